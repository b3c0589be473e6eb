//! Galera (MariaDB Galera Cluster, Percona XtraDB Cluster): a node recognised by itself
//! (`wsrep_on`) and judged by the cluster's rules, never by the asynchronous ones.
//!
//! - **Membership** (both services): in a Primary component, ready, Synced, not desynced, not
//!   rejecting queries, not in PXC maintenance. A fact the rule needs and the server did not report
//!   is an error (critical).
//! - **One writer**: the healthy member that joined the component first. Each member's identity,
//!   `wsrep_gcomm_uuid`, is a time-based (version 1) UUID made when the node joined: every node
//!   reads the same value for a member, so every node reaches the same writer alone, asking the
//!   other members its own `wsrep_incoming_addresses` lists (MariaDB 10.4+ keeps every member's
//!   identity in `mysql.wsrep_cluster_members`: then only the members that joined earlier are
//!   asked, and the writer asks nobody). Two healthy members cannot both be
//!   older than the other: never two writers among members that answer. A member a node cannot ask
//!   may be the older one: then that node is not the writer (no second writer on doubt). A node
//!   that restarts gets a new identity and joins last: it never takes the writer role back (no
//!   failback, no flapping on a rejoin); the writer moves only when it leaves the pool. (The lowest
//!   `wsrep_local_index`, MaxScale galeramon's rule, follows the UUIDs' text order, which is not
//!   their age: measured, a restarted writer took the role back.) `--galera-writers all` makes every
//!   healthy member writable.
//! - **Reads**: healthy members within `--max-recv-queue`; the writer only when no other member
//!   can serve (the one read-pool rule, [`crate::read_pool::master_verdict`]).

use super::login::MysqlTarget;
use super::replication::RowMap;
use super::session::{Batch, Session, Statement};
use super::Variables;
use crate::deadline::Deadline;
use crate::read_pool::ReplicaHealth;
use anyhow::{anyhow, Result};
use serde_json::json;

/// The Galera (and Group Replication) variables a check reads: every server answers, with no rows
/// for those it does not have.
pub const GALERA_VARIABLES: &str = "SHOW GLOBAL VARIABLES WHERE Variable_name IN \
     ('wsrep_on', 'wsrep_desync', 'wsrep_reject_queries', 'pxc_maint_mode', \
     'group_replication_group_name', 'group_replication_single_primary_mode', 'server_uuid')";

/// The Galera status a check reads (no rows on a server without Galera).
pub const GALERA_STATUS: &str = "SHOW GLOBAL STATUS WHERE Variable_name IN \
     ('wsrep_cluster_status', 'wsrep_ready', 'wsrep_connected', 'wsrep_local_state', 'wsrep_local_state_comment', \
     'wsrep_local_index', 'wsrep_cluster_size', 'wsrep_cluster_conf_id', 'wsrep_incoming_addresses', 'wsrep_local_recv_queue', \
     'wsrep_gcomm_uuid')";

pub use super::cluster::{Writer, Writers};

/// `wsrep_local_state`: 4 is Synced; the others are out of both pools.
const SYNCED: u8 = 4;

/// What a Galera node says about itself and its component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GaleraState {
    /// `wsrep_cluster_status`: `Primary`, `non-Primary` or `Disconnected`.
    pub cluster_status: String,
    /// `wsrep_ready`.
    pub ready: bool,
    /// `wsrep_local_state` (1 Joining, 2 Donor/Desynced, 3 Joined, 4 Synced).
    pub local_state: u8,
    /// `wsrep_local_state_comment` (`Synced`, `Donor/Desynced`, ...).
    pub state_comment: String,
    /// `wsrep_local_index`: this node's place in the component.
    pub local_index: u32,
    /// `wsrep_cluster_size`.
    pub cluster_size: u32,
    /// `wsrep_cluster_conf_id`: changes with every membership change.
    pub conf_id: Option<u64>,
    /// `wsrep_incoming_addresses`, in index order.
    pub incoming: Vec<String>,
    /// `wsrep_gcomm_uuid`: the node's identity in the component, made when it joined.
    pub gcomm_uuid: Option<String>,
    /// `wsrep_local_recv_queue`: write-sets received and not yet applied.
    pub recv_queue: u64,
    /// `wsrep_desync`: the node may fall behind without flow control.
    pub desync: bool,
    /// `wsrep_reject_queries` (`NONE`, `ALL`, `ALL_KILL`).
    pub reject_queries: String,
    /// `pxc_maint_mode` (Percona XtraDB Cluster: `DISABLED`, `SHUTDOWN`, `MAINTENANCE`).
    pub maint_mode: Option<String>,
}

impl GaleraState {
    /// The node's Galera state from the variables and status rows it reported: `None` when it is
    /// not a Galera node (`wsrep_on` absent or off); an error naming the fact when it is and left
    /// out something the rule needs.
    pub fn read(vars: &Variables, status: &[RowMap]) -> Result<Option<GaleraState>> {
        let on = match vars.get("wsrep_on").cloned().flatten() {
            Some(v) => super::switch_on(&v),
            None => false,
        };
        if !on {
            return Ok(None);
        }
        let status = variables(status);
        let get = |name: &str| -> Result<String> {
            status.get(name).cloned().flatten().ok_or_else(|| {
                anyhow!("wsrep_on is ON but the server did not report {name}, which the decision needs (fail closed: critical)")
            })
        };
        let number = |name: &str| -> Result<u64> {
            let v = get(name)?;
            v.trim().parse::<u64>().map_err(|_| anyhow!("{name} is '{v}', not a number"))
        };
        let var = |name: &str| vars.get(name).cloned().flatten();
        let cluster_status = get("wsrep_cluster_status")?;
        let connected = status.get("wsrep_connected").cloned().flatten().map(|v| super::switch_on(&v));
        // A node not connected to any cluster reports its index as 18446744073709551615 (-1).
        let local_index = number("wsrep_local_index").map(|i| u32::try_from(i).unwrap_or(u32::MAX))?;
        Ok(Some(GaleraState {
            ready: super::switch_on(&get("wsrep_ready")?) && connected != Some(false),
            local_state: u8::try_from(number("wsrep_local_state")?).unwrap_or(0),
            state_comment: get("wsrep_local_state_comment").unwrap_or_default(),
            local_index,
            cluster_size: u32::try_from(number("wsrep_cluster_size")?).unwrap_or(0),
            conf_id: number("wsrep_cluster_conf_id").ok(),
            incoming: get("wsrep_incoming_addresses")?.split(',').map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect(),
            recv_queue: number("wsrep_local_recv_queue")?,
            gcomm_uuid: status.get("wsrep_gcomm_uuid").cloned().flatten(),
            desync: var("wsrep_desync").is_some_and(|v| super::switch_on(&v)),
            reject_queries: var("wsrep_reject_queries").unwrap_or_else(|| "NONE".into()),
            maint_mode: var("pxc_maint_mode"),
            cluster_status,
        }))
    }

    /// Why the node is out of both pools, in the order an operator checks it; `None` for a
    /// healthy member.
    pub fn out_of_membership(&self) -> Option<String> {
        if self.cluster_status != "Primary" {
            return Some(format!(
                "wsrep_cluster_status is {}: not in the Primary component (no quorum), the node refuses queries",
                self.cluster_status
            ));
        }
        if !self.ready {
            return Some("wsrep_ready is OFF: the node does not accept queries".into());
        }
        if let Some(mode) = self.maint_mode.as_deref().filter(|m| !m.eq_ignore_ascii_case("DISABLED")) {
            return Some(format!("pxc_maint_mode is {mode}: taken out by the operator (the cluster's own drain)"));
        }
        if !self.reject_queries.eq_ignore_ascii_case("NONE") {
            return Some(format!("wsrep_reject_queries is {}: the node refuses client queries", self.reject_queries));
        }
        if self.desync {
            return Some("wsrep_desync is ON: the node falls behind the cluster without flow control".into());
        }
        if self.local_state != SYNCED {
            return Some(format!("wsrep_local_state is {} ({}), not Synced", self.local_state, self.state_comment));
        }
        None
    }

    /// Whether the node is a state-transfer donor (`wsrep_local_state` 2 without the operator's
    /// `wsrep_desync`) and in service otherwise: what `--galera-donor-reads` lets read.
    pub fn donor(&self) -> bool {
        self.local_state == 2 && !self.desync && GaleraState { local_state: SYNCED, ..self.clone() }.out_of_membership().is_none()
    }

    /// Why the node cannot serve reads: out of membership, or its receive queue over `max_queue`.
    pub fn read_problem(&self, max_queue: Option<u64>) -> Option<String> {
        self.out_of_membership().or_else(|| match max_queue {
            Some(max) if self.recv_queue > max => {
                Some(format!("wsrep_local_recv_queue is {}, over --max-recv-queue {max}: it is behind the cluster", self.recv_queue))
            }
            _ => None,
        })
    }

    /// When the node joined the component, from its time-based `wsrep_gcomm_uuid`, in 100 ns since
    /// the UUID epoch (1582), with the UUID for ties; `None` when it is not a version 1 UUID.
    pub fn joined(&self) -> Option<(u64, &str)> {
        joined_at(self.gcomm_uuid.as_deref()?)
    }

    /// When it joined, as Unix seconds (for messages).
    pub fn joined_unix(&self) -> Option<i64> {
        const UUID_EPOCH_TO_UNIX: u64 = 0x01B2_1DD2_1381_4000;
        let (t, _) = self.joined()?;
        Some((t.saturating_sub(UUID_EPOCH_TO_UNIX) / 10_000_000) as i64)
    }

    /// The other members, as this node lists them.
    pub fn others(&self) -> Vec<String> {
        self.incoming.iter().enumerate().filter(|(i, _)| *i != self.local_index as usize).map(|(_, a)| a.clone()).collect()
    }

    /// The state as a fact.
    pub fn fact(&self) -> serde_json::Value {
        let mut f = json!({
            "cluster_status": self.cluster_status,
            "ready": self.ready,
            "local_state": self.local_state,
            "state": self.state_comment,
            "local_index": self.local_index,
            "cluster_size": self.cluster_size,
            "incoming_addresses": self.incoming,
            "recv_queue": self.recv_queue,
            "desync": self.desync,
            "reject_queries": self.reject_queries,
        });
        if let Some(id) = self.conf_id {
            f["conf_id"] = id.into();
        }
        if let Some(t) = self.joined_unix() {
            f["joined_unix"] = t.into();
        }
        if let Some(m) = &self.maint_mode {
            f["pxc_maint_mode"] = m.as_str().into();
        }
        f
    }
}

/// When a member with identity `uuid` (a time-based `wsrep_gcomm_uuid`) joined, in 100 ns since
/// the UUID epoch (1582), with the UUID for ties; `None` when it is not a version 1 UUID.
fn joined_at(uuid: &str) -> Option<(u64, &str)> {
    let parts: Vec<&str> = uuid.split('-').collect();
    let [low, mid, hi, ..] = parts[..] else { return None };
    if low.len() != 8 || mid.len() != 4 || hi.len() != 4 || !hi.starts_with('1') {
        return None;
    }
    let hex = |h: &str| u64::from_str_radix(h, 16).ok();
    Some(((hex(&hi[1..])? << 48) | (hex(mid)? << 32) | hex(low)?, uuid))
}

/// What one other member said of itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its address, as `wsrep_incoming_addresses` lists it.
    pub address: String,
    /// Its state, or why it could not be asked.
    pub state: std::result::Result<GaleraState, String>,
}

/// The one-writer rule, for a node `me` that is a healthy member, given what the other members it
/// lists said (`others`). `Writers::All`: every healthy member writes.
pub fn writer(me: &GaleraState, others: &[Peer], mode: Writers) -> Writer {
    if mode == Writers::All {
        return Writer::This("--galera-writers all: every healthy member takes writes".into());
    }
    let Some(mine) = me.joined() else {
        return Writer::Another(format!(
            "wsrep_gcomm_uuid {:?} is not a time-based UUID: the check cannot tell which member joined first",
            me.gcomm_uuid
        ));
    };
    for peer in others {
        match &peer.state {
            Err(why) => {
                return Writer::Another(format!(
                    "{} could not be asked when it joined: {why}; it may be the writer: no write service here until it \
                     answers or leaves the component",
                    peer.address
                ))
            }
            Ok(s) if s.cluster_status == "Primary" && s.conf_id != me.conf_id => {
                return Writer::Another(format!(
                    "{} reports membership conf_id {:?}, this node {:?}: the membership is changing",
                    peer.address, s.conf_id, me.conf_id
                ))
            }
            Ok(s) if s.out_of_membership().is_none() => match s.joined() {
                None => return Writer::Another(format!("{} reported no time-based wsrep_gcomm_uuid: it may be the writer", peer.address)),
                Some(theirs) if theirs < mine => {
                    return Writer::Another(format!("{} joined the component earlier: it is the writer", peer.address))
                }
                Some(_) => {}
            },
            Ok(_) => {}
        }
    }
    match others.len() {
        0 => Writer::This("the healthy member that joined the component first".into()),
        n => Writer::This(format!("the healthy member that joined the component first ({n} other member(s) asked)")),
    }
}

/// Asks each member at `addresses` for its Galera state, in parallel, all within `deadline`, with
/// `login` (the check's own).
pub fn ask_members(addresses: &[String], login: &MysqlTarget, deadline: Deadline) -> Vec<Peer> {
    let asked = super::discovery::ask_members(addresses, login, deadline, "wsrep_node_incoming_address", |session, addr| {
        let (vars, status) = read(session)?;
        GaleraState::read(&vars, &status)?.ok_or_else(|| anyhow!("{addr} says wsrep_on is OFF: not a member"))
    });
    asked.into_iter().map(|(address, state)| Peer { address, state }).collect()
}

/// Reads the Galera variables and status of `session`'s server in one round trip.
pub fn read(session: &mut Session) -> Result<(Variables, Vec<RowMap>)> {
    match session.batch(&[Statement::all(GALERA_VARIABLES), Statement::all(GALERA_STATUS)])? {
        Batch::Answered(mut sets) => {
            let status = sets.pop().unwrap_or_default();
            Ok((variables(&sets.pop().unwrap_or_default()), status))
        }
        Batch::NotUnderstood(words) => Err(anyhow!("{GALERA_STATUS} on {}: {words}", session.address())),
    }
}

/// `SHOW VARIABLES` rows as name to value.
pub fn variables(rows: &[RowMap]) -> Variables {
    rows.iter().filter_map(|r| Some((r.get("Variable_name")?.clone()?.to_ascii_lowercase(), r.get("Value")?.clone()))).collect()
}

/// The component's members as this node's `mysql.wsrep_cluster_members` lists them (MariaDB 10.4+,
/// `SELECT` on that table): `(gcomm UUID, incoming address)`. `None` when the table cannot be read
/// or does not list this node's current view (then every other member is asked).
pub const MEMBERS_TABLE: &str = "SELECT node_uuid, node_incoming_address FROM mysql.wsrep_cluster_members";

/// Reads [`MEMBERS_TABLE`], checked against `me`: `None` when it is unreadable or stale.
pub fn members_table(session: &mut Session, me: &GaleraState) -> Option<Vec<(String, String)>> {
    let rows = match session.batch(&[Statement::all(MEMBERS_TABLE)]) {
        Ok(Batch::Answered(mut sets)) => sets.pop()?,
        _ => return None,
    };
    let members: Vec<(String, String)> =
        rows.iter().filter_map(|r| Some((r.get("node_uuid")?.clone()?, r.get("node_incoming_address")?.clone()?))).collect();
    let lists_me = me.gcomm_uuid.as_ref().is_some_and(|u| members.iter().any(|(id, _)| id == u));
    (lists_me && members.len() == me.cluster_size as usize).then_some(members)
}

/// The members to ask for the one-writer rule: those that joined before `me` (from the members
/// table), or every other member when the table is not there.
pub fn to_ask(me: &GaleraState, table: Option<&[(String, String)]>) -> Vec<String> {
    let Some(mine) = me.joined() else { return me.others() };
    match table {
        Some(members) => members
            .iter()
            .filter(|(uuid, _)| !joined_at(uuid).is_some_and(|theirs| theirs >= mine))
            .map(|(_, address)| address.clone())
            .collect(),
        None => me.others(),
    }
}

/// What each asked member said, as a fact.
pub fn members_fact(peers: &[Peer]) -> serde_json::Value {
    peers
        .iter()
        .map(|p| match &p.state {
            Ok(s) => json!({"member": p.address, "local_index": s.local_index, "joined_unix": s.joined_unix(),
                            "healthy": s.out_of_membership().is_none(), "problem": s.out_of_membership()}),
            Err(e) => json!({"member": p.address, "healthy": null, "problem": e}),
        })
        .collect()
}

/// The members other than the writer, as read-pool replicas: healthy when their read problem is none.
pub fn as_replicas(peers: &[Peer], max_queue: Option<u64>) -> Vec<ReplicaHealth> {
    peers
        .iter()
        .map(|p| match &p.state {
            Ok(s) => ReplicaHealth::judged(p.address.clone(), s.read_problem(max_queue)),
            Err(why) => ReplicaHealth::unprobed(p.address.clone(), why.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Synced member of a healthy three-node component, at `index`.
    fn member(index: u32) -> GaleraState {
        GaleraState {
            cluster_status: "Primary".into(),
            ready: true,
            local_state: 4,
            state_comment: "Synced".into(),
            local_index: index,
            cluster_size: 3,
            conf_id: Some(3),
            incoming: vec!["10.0.0.1:3306".into(), "10.0.0.2:3306".into(), "10.0.0.3:3306".into()],
            // Joined in index order, one second apart (time_low counts 100 ns).
            gcomm_uuid: Some(format!("{:08x}-f221-11f1-a77f-c28a3d8724e9", 0x1000_0000u32 + index * 10_000_000)),
            recv_queue: 0,
            desync: false,
            reject_queries: "NONE".into(),
            maint_mode: None,
        }
    }
    fn peer(index: u32, state: std::result::Result<GaleraState, String>) -> Peer {
        Peer { address: format!("10.0.0.{}:3306", index + 1), state }
    }

    /// Real rows (MariaDB 10.11, galera-4 26.4.23): three Synced members, and a node left alone in
    /// a non-Primary component after a failed join.
    #[test]
    fn reads_real_status() {
        let rows = |pairs: &[(&str, &str)]| -> Vec<RowMap> {
            pairs
                .iter()
                .map(|(k, v)| [("Variable_name".to_string(), Some(k.to_string())), ("Value".to_string(), Some(v.to_string()))].into())
                .collect()
        };
        let vars = variables(&rows(&[("wsrep_on", "ON"), ("wsrep_desync", "OFF"), ("wsrep_reject_queries", "NONE")]));
        let synced = rows(&[
            ("wsrep_local_recv_queue", "0"),
            ("wsrep_local_state", "4"),
            ("wsrep_local_state_comment", "Synced"),
            ("wsrep_incoming_addresses", "127.0.0.1:17100,127.0.0.2:17101,127.0.0.3:17102"),
            ("wsrep_cluster_conf_id", "3"),
            ("wsrep_cluster_size", "3"),
            ("wsrep_cluster_status", "Primary"),
            ("wsrep_connected", "ON"),
            ("wsrep_local_index", "1"),
            ("wsrep_ready", "ON"),
            ("wsrep_gcomm_uuid", "166c5d8c-f221-11f1-a3f9-7ac354824737"),
        ]);
        let s = GaleraState::read(&vars, &synced).unwrap().unwrap();
        assert_eq!((s.local_index, s.cluster_size, s.incoming.len()), (1, 3, 3));
        assert_eq!(s.out_of_membership(), None);
        assert_eq!(s.others(), vec!["127.0.0.1:17100".to_string(), "127.0.0.3:17102".to_string()]);
        // 2026-12-07 09:32:14 UTC, when that node joined.
        assert_eq!(s.joined_unix(), Some(1796635934), "{s:?}");
        let alone = rows(&[
            ("wsrep_local_recv_queue", "0"),
            ("wsrep_local_state", "0"),
            ("wsrep_local_state_comment", "Initialized"),
            ("wsrep_incoming_addresses", "127.0.0.1:17100,unspecified"),
            ("wsrep_cluster_size", "2"),
            ("wsrep_cluster_status", "non-Primary"),
            ("wsrep_local_index", "0"),
            ("wsrep_ready", "OFF"),
        ]);
        let s = GaleraState::read(&vars, &alone).unwrap().unwrap();
        assert!(s.out_of_membership().unwrap().starts_with("wsrep_cluster_status is non-Primary"), "{s:?}");
        // Not a Galera node: no state, whatever the status says.
        let off = variables(&rows(&[("wsrep_on", "OFF")]));
        assert_eq!(GaleraState::read(&off, &synced).unwrap(), None);
        assert_eq!(GaleraState::read(&Variables::new(), &[]).unwrap(), None);
        // wsrep_on and a missing fact: critical, naming it.
        let e = GaleraState::read(&vars, &synced[1..]).unwrap_err().to_string();
        assert!(e.contains("wsrep_local_recv_queue") && e.contains("fail closed"), "{e}");
    }

    /// Each out-of-service state takes the node out, naming the setting.
    #[test]
    fn membership_rule() {
        let out = |f: fn(&mut GaleraState)| {
            let mut s = member(0);
            f(&mut s);
            s.out_of_membership().unwrap()
        };
        assert!(out(|s| s.cluster_status = "non-Primary".into()).contains("no quorum"));
        assert!(out(|s| s.ready = false).contains("wsrep_ready is OFF"));
        assert!(out(|s| s.desync = true).contains("wsrep_desync is ON"));
        assert!(out(|s| s.reject_queries = "ALL".into()).contains("wsrep_reject_queries is ALL"));
        assert!(out(|s| s.maint_mode = Some("MAINTENANCE".into())).contains("pxc_maint_mode is MAINTENANCE"));
        assert!(out(|s| {
            s.local_state = 2;
            s.state_comment = "Donor/Desynced".into()
        })
        .contains("(Donor/Desynced), not Synced"));
        let mut s = member(0);
        s.maint_mode = Some("DISABLED".into());
        assert_eq!(s.out_of_membership(), None);
        s.recv_queue = 50;
        assert_eq!(s.read_problem(Some(50)), None);
        assert!(s.read_problem(Some(49)).unwrap().contains("over --max-recv-queue 49"));
    }

    /// One writer: the earliest-joined healthy member, whatever the index order; doubt about a
    /// member means no write service here; a restarted member (a new, later identity) never takes
    /// the role back.
    #[test]
    fn one_writer_rule() {
        let is_this = |w: &Writer| matches!(w, Writer::This(_));
        let all = |me: u32| -> Vec<Peer> { (0..3).filter(|i| *i != me).map(|i| peer(i, Ok(member(i)))).collect() };
        let writers: Vec<u32> = (0..3).filter(|i| is_this(&writer(&member(*i), &all(*i), Writers::One))).collect();
        assert_eq!(writers, vec![0], "exactly the earliest-joined member");
        // The earliest one desynced: the next earliest writes.
        let mut desynced = member(0);
        desynced.desync = true;
        let w = writer(&member(1), &[peer(0, Ok(desynced.clone())), peer(2, Ok(member(2)))], Writers::One);
        assert!(is_this(&w), "{w:?}");
        assert!(!is_this(&writer(&member(2), &[peer(0, Ok(desynced)), peer(1, Ok(member(1)))], Writers::One)));
        // Node 0 restarted: a later identity; it joins last, and node 1 keeps the role.
        let mut back = member(0);
        back.gcomm_uuid = Some(format!("{:08x}-f221-11f1-a77f-c28a3d8724e9", 0x2000_0000u32));
        assert!(!is_this(&writer(&back, &[peer(1, Ok(member(1))), peer(2, Ok(member(2)))], Writers::One)));
        assert!(is_this(&writer(&member(1), &[peer(0, Ok(back)), peer(2, Ok(member(2)))], Writers::One)));
        // A member that cannot be asked may be the writer.
        let w = writer(&member(1), &[peer(0, Err("connection refused".into())), peer(2, Ok(member(2)))], Writers::One);
        assert!(matches!(&w, Writer::Another(why) if why.contains("could not be asked")), "{w:?}");
        let mut moved = member(2);
        moved.conf_id = Some(4);
        assert!(matches!(writer(&member(0), &[peer(2, Ok(moved))], Writers::One), Writer::Another(why) if why.contains("changing")));
        let mut opaque = member(0);
        opaque.gcomm_uuid = Some("not-a-uuid".into());
        assert!(!is_this(&writer(&opaque, &[], Writers::One)));
        assert!(is_this(&writer(&member(2), &all(2), Writers::All)));
    }

    /// With the members table only the members that joined earlier are asked (the writer asks
    /// nobody); without it, every other member.
    #[test]
    fn who_is_asked() {
        let uuid = |i: u32| member(i).gcomm_uuid.unwrap();
        let table: Vec<(String, String)> = (0..3).map(|i| (uuid(i), format!("10.0.0.{}:3306", i + 1))).collect();
        assert!(to_ask(&member(0), Some(&table)).is_empty());
        assert_eq!(to_ask(&member(2), Some(&table)), vec!["10.0.0.1:3306".to_string(), "10.0.0.2:3306".to_string()]);
        assert_eq!(to_ask(&member(0), None), vec!["10.0.0.2:3306".to_string(), "10.0.0.3:3306".to_string()]);
    }
}
