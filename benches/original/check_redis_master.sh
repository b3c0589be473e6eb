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
role=`echo 'INFO Replication'|$comm |grep -Ec 'role:master'`
echo 'INFO Replication'|$comm

if [ $role -ne 1 ]
then
    exit 2
fi
