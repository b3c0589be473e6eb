#!/bin/bash
# The original check from the seed document (only the redis-cli path changed), kept as the bench's
# "before" reference. Not used by the project.
myport=$1
auth=$2
if [ ! -n "$auth" ]
then
auth='\"\"'
fi
comm="redis-cli -p $myport -a $auth "
role=`echo 'INFO Replication'|$comm |grep -Ec '^role:slave|^master_link_status:up'`
single=`echo 'INFO Replication'|$comm |grep -Ec '^role:master|^connected_slaves:0'`
echo 'INFO Replication'|$comm

if [ $role -ne 2 -a $single -ne 2  ]
then
    exit 2
fi
