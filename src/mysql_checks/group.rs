//! Group Replication (InnoDB Cluster): a member recognised by itself (`group_replication_group_name`
//! set, a row for its own `server_uuid` in `performance_schema.replication_group_members`) and
//! judged by the group's rules, from its own view, confirmed with the members it lists.
//!
//! - **Write**: this member ONLINE, PRIMARY (single-primary mode; every ONLINE member in
//!   multi-primary mode), the group has quorum in its view (members ONLINE or RECOVERING are more
//!   than half of those listed: the rule MySQL Router and ProxySQL use), `super_read_only` off, and
//!   confirmed: a member's own view can be stale (measured: a primary frozen until the others elected
//!   another, then resumed, sees itself ONLINE PRIMARY for seconds), so the other members it lists
//!   ONLINE are asked, in parallel within the deadline; any that answers and names another primary,
//!   or does not list this one ONLINE, vetoes; and this member plus those that confirm must be more
//!   than half of the group, or it cannot tell (critical).
//! - **Read**: this member ONLINE with quorum in its view and an applier backlog within
//!   `--max-recv-queue`; secondaries serve reads, the primary only when no secondary can (the one
//!   read-pool rule, from this member's own view of the others' state and backlog).

pub use super::cluster::Writer;
use super::login::MysqlTarget;
use super::replication::RowMap;
use super::session::{Batch, Session, Statement};
use super::Variables;
use crate::deadline::Deadline;
use crate::read_pool::ReplicaHealth;
use anyhow::{anyhow, bail, Result};
use serde_json::json;

/// The group's members as this member sees them.
pub const MEMBERS: &str =
    "SELECT MEMBER_ID, MEMBER_HOST, MEMBER_PORT, MEMBER_STATE, MEMBER_ROLE FROM performance_schema.replication_group_members";

/// Each member's applier backlog, as this member knows it.
pub const STATS: &str =
    "SELECT MEMBER_ID, COUNT_TRANSACTIONS_REMOTE_IN_APPLIER_QUEUE AS backlog FROM performance_schema.replication_group_member_stats";

/// What a check needs to read the group's tables (named when refused).
pub const GRANTS: &str = "GRANT SELECT ON performance_schema.replication_group_members, SELECT ON \
     performance_schema.replication_group_member_stats";

/// One member as a view lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// `MEMBER_ID` (its `server_uuid`).
    pub id: String,
    /// `MEMBER_HOST:MEMBER_PORT`.
    pub address: String,
    /// `MEMBER_STATE`: ONLINE, RECOVERING, UNREACHABLE, ERROR, OFFLINE.
    pub state: String,
    /// `MEMBER_ROLE`: PRIMARY or SECONDARY.
    pub role: String,
    /// Its applier backlog, when the stats list it.
    pub backlog: Option<u64>,
}

impl Member {
    /// ONLINE and PRIMARY: a primary in the view that lists it.
    pub fn is_online_primary(&self) -> bool {
        self.state == "ONLINE" && self.role == "PRIMARY"
    }
}

/// A member's view of its group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupState {
    /// This member's `server_uuid`.
    pub me: String,
    /// `group_replication_single_primary_mode`.
    pub single_primary: bool,
    /// The members its view lists, this one included.
    pub members: Vec<Member>,
}

impl GroupState {
    /// Whether `vars` say the Group Replication plugin is set up (`group_replication_group_name`).
    pub fn configured(vars: &Variables) -> bool {
        vars.get("group_replication_group_name").cloned().flatten().is_some_and(|n| !n.trim().is_empty())
    }

    /// The view from the rows of [`MEMBERS`] and [`STATS`]; `None` when the group's table does not
    /// list this member (the plugin is loaded but this server is no member: judged as a standalone
    /// server).
    pub fn from_rows(vars: &Variables, members: &[RowMap], stats: &[RowMap]) -> Result<Option<GroupState>> {
        let me = vars
            .get("server_uuid")
            .cloned()
            .flatten()
            .ok_or_else(|| anyhow!("the server did not report @@server_uuid, which the decision needs (fail closed: critical)"))?;
        let field = |r: &RowMap, name: &str| r.get(name).cloned().flatten().unwrap_or_default();
        let backlog = |id: &str| stats.iter().find(|s| field(s, "MEMBER_ID") == id).and_then(|s| field(s, "backlog").parse::<u64>().ok());
        let members: Vec<Member> = members
            .iter()
            .filter(|r| !field(r, "MEMBER_ID").is_empty())
            .map(|r| {
                let id = field(r, "MEMBER_ID");
                Member {
                    address: format!("{}:{}", field(r, "MEMBER_HOST"), field(r, "MEMBER_PORT")),
                    state: field(r, "MEMBER_STATE"),
                    role: field(r, "MEMBER_ROLE"),
                    backlog: backlog(&id),
                    id,
                }
            })
            .collect();
        if !members.iter().any(|m| m.id == me) {
            return Ok(None);
        }
        // Absent (older servers: single-primary is the default) or on.
        let single_primary = vars.get("group_replication_single_primary_mode").cloned().flatten().map_or(true, |v| super::switch_on(&v));
        Ok(Some(GroupState { me, single_primary, members }))
    }

    /// This member's row.
    pub fn own(&self) -> &Member {
        self.members.iter().find(|m| m.id == self.me).expect("from_rows keeps only views that list this member")
    }

    /// Members ONLINE or RECOVERING, and all those listed.
    pub fn reachable_count(&self) -> (usize, usize) {
        (self.members.iter().filter(|m| m.state == "ONLINE" || m.state == "RECOVERING").count(), self.members.len())
    }

    /// Why this member serves neither pool (not ONLINE, or in the minority of its view).
    pub fn out_of_group(&self) -> Option<String> {
        let own = self.own();
        if own.state != "ONLINE" {
            return Some(format!("MEMBER_STATE is {}: not an ONLINE member of the group", own.state));
        }
        let (up, all) = self.reachable_count();
        if up * 2 <= all {
            let gone: Vec<String> = self
                .members
                .iter()
                .filter(|m| m.state != "ONLINE" && m.state != "RECOVERING")
                .map(|m| format!("{} {}", m.address, m.state))
                .collect();
            return Some(format!(
                "no quorum in its view: {up} of {all} members reachable ({}): the group takes no write here",
                gone.join(", ")
            ));
        }
        None
    }

    /// Whether this member writes in this view: the PRIMARY in single-primary mode; in
    /// multi-primary mode every ONLINE member, or with `one_of_many` the one with the lowest
    /// `MEMBER_ID`.
    pub fn writes(&self, one_of_many: bool) -> bool {
        let own = self.own();
        match (self.single_primary, one_of_many) {
            (true, _) => own.role == "PRIMARY",
            (false, false) => own.state == "ONLINE",
            (false, true) => self.lowest_online().is_some_and(|m| m.id == self.me),
        }
    }

    /// The ONLINE member with the lowest `MEMBER_ID`: the one writer of `--group-writers one`.
    pub fn lowest_online(&self) -> Option<&Member> {
        self.members.iter().filter(|m| m.state == "ONLINE").min_by(|a, b| a.id.cmp(&b.id))
    }

    /// The primary in this view (single-primary mode).
    pub fn primary(&self) -> Option<&Member> {
        self.members.iter().find(|m| m.is_online_primary())
    }

    /// The other members listed ONLINE: who confirms a primary.
    pub fn others_online(&self) -> Vec<String> {
        self.members.iter().filter(|m| m.id != self.me && m.state == "ONLINE").map(|m| m.address.clone()).collect()
    }

    /// The other members as read-pool replicas, from this member's own view: healthy when ONLINE
    /// with a backlog within `max_queue`.
    pub fn others_as_replicas(&self, max_queue: Option<u64>) -> Vec<ReplicaHealth> {
        self.members
            .iter()
            .filter(|m| m.id != self.me)
            .map(|m| ReplicaHealth::judged(m.address.clone(), member_problem(m, max_queue)))
            .collect()
    }

    /// The view as a fact.
    pub fn fact(&self) -> serde_json::Value {
        json!({
            "mode": if self.single_primary { "single-primary" } else { "multi-primary" },
            "member_id": self.me,
            "members": self.members.iter().map(|m| json!({"member": m.address, "id": m.id, "state": m.state, "role": m.role,
                                                          "backlog": m.backlog})).collect::<Vec<_>>(),
        })
    }
}

/// Why a member cannot serve reads, in a view.
pub fn member_problem(m: &Member, max_queue: Option<u64>) -> Option<String> {
    if m.state != "ONLINE" {
        return Some(format!("MEMBER_STATE is {}", m.state));
    }
    match (max_queue, m.backlog) {
        (Some(max), Some(b)) if b > max => Some(format!("applier backlog {b} transactions, over --max-recv-queue {max}")),
        (Some(_), None) => Some("its applier backlog is not reported (fail closed)".into()),
        _ => None,
    }
}

/// Reads the group's view in one round trip, when `vars` say Group Replication is set up.
pub fn read(session: &mut Session, vars: &Variables) -> Result<Option<GroupState>> {
    if !GroupState::configured(vars) {
        return Ok(None);
    }
    let address = session.address().to_string();
    let sets = match session.batch(&[Statement::all(MEMBERS), Statement::all(STATS)]) {
        Ok(Batch::Answered(sets)) => sets,
        Ok(Batch::NotUnderstood(words)) => {
            bail!("{address} has Group Replication set up but did not understand {MEMBERS} ({words}): MySQL before 8.0.2 is not supported")
        }
        Err(e) => {
            let text = format!("{e:#}");
            if text.contains("1142") {
                bail!("{text} (the monitor needs: {GRANTS})");
            }
            return Err(e);
        }
    };
    let mut sets = sets.into_iter();
    let (members, stats) = (sets.next().unwrap_or_default(), sets.next().unwrap_or_default());
    GroupState::from_rows(vars, &members, &stats)
}

/// What one other member said of the group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its address, as this member's view lists it.
    pub address: String,
    /// Its own view, or why it could not be asked.
    pub view: std::result::Result<Vec<Member>, String>,
}

/// Asks each member at `addresses` for its view of the group, in parallel within `deadline`.
pub fn ask_members(addresses: &[String], login: &MysqlTarget, deadline: Deadline) -> Vec<Peer> {
    let asked = super::discovery::ask_members(addresses, login, deadline, "report_host", |session, addr| {
        let rows = match session.batch(&[Statement::all(MEMBERS), Statement::all("SELECT @@server_uuid AS server_uuid")])? {
            Batch::Answered(sets) => sets,
            Batch::NotUnderstood(words) => bail!("{MEMBERS} on {addr}: {words}"),
        };
        let members = rows.first().cloned().unwrap_or_default();
        let uuid = rows.get(1).and_then(|r| r.first()).and_then(|r| r.get("server_uuid").cloned().flatten());
        let vars: Variables = [("server_uuid".to_string(), uuid)].into();
        GroupState::from_rows(&vars, &members, &[])?
            .map(|g| g.members)
            .ok_or_else(|| anyhow!("{addr} does not list itself in its group: not a member"))
    });
    asked.into_iter().map(|(address, view)| Peer { address, view }).collect()
}

/// What each asked member said, as a fact.
pub fn peers_fact(peers: &[Peer]) -> serde_json::Value {
    peers
        .iter()
        .map(|p| match &p.view {
            Ok(v) => json!({"member": p.address, "primary": v.iter().find(|m| m.is_online_primary()).map(|m| m.address.clone())}),
            Err(e) => json!({"member": p.address, "error": e}),
        })
        .collect()
}

/// Whether this member is the writer, and why (not). `peers` are the other ONLINE
/// members' own views; `one_of_many`: in multi-primary mode, only the ONLINE member with the
/// lowest `MEMBER_ID` writes (`--group-writers one`).
pub fn writer(g: &GroupState, peers: &[Peer], one_of_many: bool) -> Writer {
    let own = g.own();
    if g.single_primary && own.role != "PRIMARY" {
        let primary = g.primary().map(|p| p.address.clone()).unwrap_or_else(|| "none".into());
        return Writer::Another(format!("MEMBER_ROLE is {}: the primary is {primary}", own.role));
    }
    if !g.single_primary && one_of_many {
        if let Some(first) = g.lowest_online().filter(|m| m.id != g.me) {
            return Writer::Another(format!(
                "multi-primary with --group-writers one: {} (the lowest MEMBER_ID) is the writer",
                first.address
            ));
        }
    }
    let mut confirmed = 1; // this member
    let mut unasked = Vec::new();
    for p in peers {
        match &p.view {
            Err(why) => unasked.push(format!("{}: {why}", p.address)),
            Ok(view) => {
                let sees_me = view.iter().find(|m| m.id == g.me);
                match sees_me {
                    Some(m) if m.state == "ONLINE" && (!g.single_primary || m.role == "PRIMARY") => confirmed += 1,
                    Some(m) => {
                        let other = view.iter().find(|x| x.is_online_primary() && x.id != g.me);
                        return Writer::Another(format!(
                            "{} sees this member {} {}{}: this member's view is stale",
                            p.address,
                            m.state,
                            m.role,
                            other.map(|o| format!(" and {} as primary", o.address)).unwrap_or_default()
                        ));
                    }
                    None => {
                        return Writer::Another(format!(
                            "{} does not list this member in its group: this member's view is stale",
                            p.address
                        ))
                    }
                }
            }
        }
    }
    let all = g.members.len();
    if confirmed * 2 <= all {
        return Writer::Another(format!(
            "only {confirmed} of {all} members confirm it (itself included; could not ask: {}): cannot tell whether the group \
             elected another primary",
            unasked.join("; ")
        ));
    }
    let role = match (g.single_primary, one_of_many) {
        (true, _) => "the primary",
        (false, false) => "an ONLINE member in multi-primary mode",
        (false, true) => "the ONLINE member with the lowest MEMBER_ID in multi-primary mode (--group-writers one)",
    };
    Writer::This(format!("{role}, confirmed by {confirmed} of {all} members (itself included)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(i: u32, state: &str, role: &str) -> Member {
        Member { id: format!("uuid-{i}"), address: format!("10.0.0.{i}:3306"), state: state.into(), role: role.into(), backlog: Some(0) }
    }
    fn view(me: u32, members: Vec<Member>) -> GroupState {
        GroupState { me: format!("uuid-{me}"), single_primary: true, members }
    }
    fn healthy() -> Vec<Member> {
        vec![member(1, "ONLINE", "PRIMARY"), member(2, "ONLINE", "SECONDARY"), member(3, "ONLINE", "SECONDARY")]
    }
    fn peer(i: u32, view: std::result::Result<Vec<Member>, String>) -> Peer {
        Peer { address: format!("10.0.0.{i}:3306"), view }
    }
    fn is_this(w: &Writer) -> bool {
        matches!(w, Writer::This(_))
    }
    /// Why another member is, or may be, the writer (panics when this one is).
    fn another(w: Writer) -> String {
        match w {
            Writer::Another(why) => why,
            Writer::This(why) => panic!("the writer: {why}"),
        }
    }

    /// Real rows (MySQL 9.7.4, three members, single-primary) read into a view.
    #[test]
    fn reads_real_rows() {
        let row = |pairs: &[(&str, &str)]| -> RowMap { pairs.iter().map(|(k, v)| (k.to_string(), Some(v.to_string()))).collect() };
        let members = [
            row(&[
                ("MEMBER_ID", "eb0fa4c0"),
                ("MEMBER_HOST", "127.0.0.3"),
                ("MEMBER_PORT", "17900"),
                ("MEMBER_STATE", "ONLINE"),
                ("MEMBER_ROLE", "SECONDARY"),
            ]),
            row(&[
                ("MEMBER_ID", "eb231b46"),
                ("MEMBER_HOST", "127.0.0.2"),
                ("MEMBER_PORT", "17900"),
                ("MEMBER_STATE", "ONLINE"),
                ("MEMBER_ROLE", "PRIMARY"),
            ]),
        ];
        let stats = [row(&[("MEMBER_ID", "eb0fa4c0"), ("backlog", "7")])];
        let vars: Variables = [
            ("group_replication_group_name".to_string(), Some("aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa".to_string())),
            ("server_uuid".to_string(), Some("eb0fa4c0".to_string())),
            ("group_replication_single_primary_mode".to_string(), Some("ON".to_string())),
        ]
        .into();
        let g = GroupState::from_rows(&vars, &members, &stats).unwrap().unwrap();
        assert_eq!((g.own().role.as_str(), g.own().backlog), ("SECONDARY", Some(7)));
        assert_eq!(g.primary().unwrap().address, "127.0.0.2:17900");
        assert_eq!(g.others_online(), vec!["127.0.0.2:17900".to_string()]);
        assert_eq!(g.out_of_group(), None);
        // Not listed: not a member (the plugin loaded, the server standalone).
        let mut stranger = vars.clone();
        stranger.insert("server_uuid".into(), Some("other".into()));
        assert_eq!(GroupState::from_rows(&stranger, &members, &stats).unwrap(), None);
        assert!(!GroupState::configured(&Variables::new()));
    }

    /// Out of both pools: not ONLINE, or in the minority of its own view.
    #[test]
    fn membership_and_quorum() {
        let alone =
            view(1, vec![member(1, "ONLINE", "PRIMARY"), member(2, "UNREACHABLE", "SECONDARY"), member(3, "UNREACHABLE", "SECONDARY")]);
        assert!(alone.out_of_group().unwrap().starts_with("no quorum in its view: 1 of 3"), "{:?}", alone.out_of_group());
        let recovering =
            view(2, vec![member(1, "ONLINE", "PRIMARY"), member(2, "RECOVERING", "SECONDARY"), member(3, "ONLINE", "SECONDARY")]);
        assert!(recovering.out_of_group().unwrap().contains("RECOVERING"));
        assert_eq!(view(1, healthy()).out_of_group(), None);
        let mut lagging = healthy();
        lagging[2].backlog = Some(100);
        let g = view(1, lagging);
        let healthy_readers = g.others_as_replicas(Some(10)).iter().filter(|r| r.is_healthy()).count();
        assert_eq!(healthy_readers, 1);
    }

    /// The primary is the writer only when the members it can ask agree and a majority confirms;
    /// a member that sees another primary vetoes (a stale view after a freeze).
    #[test]
    fn the_primary_confirmed() {
        let g = view(1, healthy());
        assert!(is_this(&writer(&g, &[peer(2, Ok(healthy())), peer(3, Ok(healthy()))], false)));
        // One peer unreachable: 2 of 3 confirm: still the writer.
        assert!(is_this(&writer(&g, &[peer(2, Ok(healthy())), peer(3, Err("timeout".into()))], false)));
        // Both unreachable: cannot tell.
        let w = another(writer(&g, &[peer(2, Err("timeout".into())), peer(3, Err("refused".into()))], false));
        assert!(w.contains("only 1 of 3 members confirm"), "{w}");
        // The others elected member 2 while member 1 was frozen.
        let elected = vec![member(1, "UNREACHABLE", "SECONDARY"), member(2, "ONLINE", "PRIMARY"), member(3, "ONLINE", "SECONDARY")];
        let w = another(writer(&g, &[peer(2, Ok(elected.clone())), peer(3, Ok(elected))], false));
        assert!(w.contains("sees this member UNREACHABLE SECONDARY and 10.0.0.2:3306 as primary"), "{w}");
        // A secondary is not the writer in single-primary mode.
        assert!(another(writer(&view(2, healthy()), &[], false)).contains("the primary is 10.0.0.1:3306"));
        // Multi-primary: every ONLINE member, or with --group-writers one the lowest MEMBER_ID only.
        let all_primary: Vec<Member> = (1..=3).map(|i| member(i, "ONLINE", "PRIMARY")).collect();
        let multi = |me| GroupState { single_primary: false, ..view(me, all_primary.clone()) };
        let confirming: Vec<Peer> = (1..=3).map(|i| peer(i, Ok(all_primary.clone()))).collect();
        assert!((1..=3).all(|i| is_this(&writer(&multi(i), &confirming, false))));
        let ones: Vec<u32> = (1..=3).filter(|i| is_this(&writer(&multi(*i), &confirming, true))).collect();
        assert_eq!(ones, vec![1]);
    }
}
