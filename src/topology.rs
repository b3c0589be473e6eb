//! `check-topology`: what Consul DNS answers for every group of an inventory right now, and whether
//! anything is split. It runs every node's write and read checks with exactly the options the
//! generator gives them, in this process and in parallel (a bounded number at once, one deadline
//! for the whole run), and judges each group as a whole: two nodes passing the write check is the
//! split brain no per-node check can see.

use crate::cli::Common;
use crate::cli::OutputArgs;
use crate::deadline::Deadline;
use crate::duration::parse_positive_duration;
use crate::generator::inventory::read_inventory;
use crate::generator::plan::{plan, PlanOptions, Service};
use crate::kinds::Role;
use crate::probe::probe_all;
use crate::report::{Facts, Outcome, Status, Subcheck, Thresholds, Verdict};
use crate::runner::Check;
use anyhow::{bail, Result};
use clap::Parser;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// Command line of `check-topology`.
#[derive(Parser, Debug)]
#[command(
    name = "check-topology",
    version,
    about = "Passing (0) iff every group of the inventory has exactly one write member and a read member; \
             critical (2) on a split brain, no writer or no reader; warning (1) when a node is unreachable, warning, or in neither pool.",
    after_help = "Exit codes: 0 passing, 1 warning, 2 critical."
)]
pub struct Args {
    /// The inventory `gen-consul-services` reads.
    #[arg(long, value_name = "FILE")]
    pub inventory: PathBuf,
    /// Only this group (by name; repeat for several) [default: every group].
    #[arg(long = "group", value_name = "NAME")]
    pub groups: Vec<String>,
    /// Deadline for the whole run, every node's checks included (3s, 500ms, 1m, 2.5).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_positive_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputArgs,
}

/// One node's check in one group, as Consul would record it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeCheck {
    /// Group label (`redis test:6029`).
    pub group: String,
    /// The node's address.
    pub node: String,
    /// Write or read service.
    pub role: Role,
    /// passing, warning or critical.
    pub status: Status,
    /// False when the check could not get an answer from the server (connect, login, deadline).
    pub reachable: bool,
    /// The operator drained this service on this node (its drain file exists).
    pub drained: bool,
    /// The check's first output line.
    pub line: String,
    /// A Group Replication member whose own view lists it ONLINE PRIMARY (single-primary mode),
    /// whatever its check decided: two of them in a group are two views that disagree.
    pub claims_primary: bool,
    /// A Galera node's own view of its component (`Primary component (configuration 7) of 3`).
    pub component: Option<String>,
}

/// What one group looks like: who Consul DNS answers with for each name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupView {
    /// `redis test:6029`.
    pub group: String,
    /// Nodes in the write pool (check passing or warning).
    pub write: Vec<String>,
    /// Nodes in the read pool.
    pub read: Vec<String>,
    /// Nodes whose server did not answer.
    pub unreachable: Vec<String>,
    /// Nodes with a warning check.
    pub warning: Vec<String>,
    /// Services the operator drained: `node (write)`.
    pub drained: Vec<String>,
    /// Nodes in neither pool that nobody drained (the group lost redundancy): `node: why` (its read
    /// check's line).
    pub in_no_pool: Vec<String>,
    /// Group Replication members that each think they are the primary (their own views).
    pub claim_primary: Vec<String>,
    /// A Galera cluster's components as its nodes see them: each view, with the nodes that see it.
    pub components: Vec<(String, Vec<String>)>,
}

impl GroupView {
    /// Gathers a group's view from its checks.
    pub fn of(group: &str, checks: &[&NodeCheck]) -> GroupView {
        let nodes = |role: Role| -> Vec<String> {
            checks.iter().filter(|c| c.role == role && c.status.in_pool()).map(|c| c.node.clone()).collect()
        };
        let mut unreachable: Vec<String> = checks.iter().filter(|c| !c.reachable).map(|c| c.node.clone()).collect();
        unreachable.dedup();
        let mut warning: Vec<String> = checks.iter().filter(|c| c.status == Status::Warning).map(|c| c.node.clone()).collect();
        warning.dedup();
        let drained = checks.iter().filter(|c| c.drained).map(|c| format!("{} ({})", c.node, c.role.word())).collect();
        let (write, read) = (nodes(Role::Write), nodes(Role::Read));
        let mut in_no_pool: Vec<String> = Vec::new();
        for c in
            checks.iter().filter(|c| c.role == Role::Read && c.reachable && !c.drained && !c.status.in_pool() && !write.contains(&c.node))
        {
            if !checks.iter().any(|o| o.node == c.node && o.drained) {
                in_no_pool.push(format!("{}: {}", c.node, c.line));
            }
        }
        let mut claim_primary: Vec<String> = checks.iter().filter(|c| c.claims_primary).map(|c| c.node.clone()).collect();
        claim_primary.dedup();
        let mut components: Vec<(String, Vec<String>)> = Vec::new();
        for c in checks.iter().filter(|c| c.role == Role::Read) {
            let Some(view) = &c.component else { continue };
            match components.iter_mut().find(|(v, _)| v == view) {
                Some((_, nodes)) => nodes.push(c.node.clone()),
                None => components.push((view.clone(), vec![c.node.clone()])),
            }
        }
        GroupView { group: group.to_string(), write, read, unreachable, warning, drained, in_no_pool, claim_primary, components }
    }

    /// More than one Primary component in the nodes' own views: one of them is stale.
    pub fn primary_components(&self) -> usize {
        self.components.iter().filter(|(view, _)| view.starts_with("Primary")).count()
    }

    /// What makes this group critical, in words: no write member, more than one (a split brain),
    /// no read member. Empty for a healthy group.
    pub fn problems(&self) -> Vec<String> {
        let mut found = Vec::new();
        match self.write.len() {
            0 => found.push(format!("{}: no write member", self.group)),
            1 => {}
            n => found.push(format!("{}: {n} write members ({}): split brain", self.group, self.write.join(", "))),
        }
        if self.read.is_empty() {
            found.push(format!("{}: no read member", self.group));
        }
        found
    }
}

/// Judges every group: critical when a group has no write member, more than one (a split brain),
/// or no read member; warning when a node is unreachable or any check is warning; else passing.
/// Measures the groups and the critical ones.
pub fn decide(views: &[GroupView]) -> Verdict {
    let mut critical = Vec::new();
    let mut warnings = Vec::new();
    // Passing lines: what the operator drained, a Galera cluster's components.
    let mut notes = Vec::new();
    let mut healthy = 0;
    for v in views {
        if !v.drained.is_empty() {
            notes.push(format!("{}: drained by the operator: {}", v.group, v.drained.join(", ")));
        }
        let problems = v.problems();
        if problems.is_empty() {
            healthy += 1;
        }
        critical.extend(problems);
        if !v.unreachable.is_empty() {
            warnings.push(format!("{}: unreachable: {}", v.group, v.unreachable.join(", ")));
        }
        if !v.warning.is_empty() {
            warnings.push(format!("{}: warning on {}", v.group, v.warning.join(", ")));
        }
        if v.claim_primary.len() > 1 {
            warnings.push(format!(
                "{}: {} members each think they are the primary ({}): a stale view (the checks trust the one the others confirm)",
                v.group,
                v.claim_primary.len(),
                v.claim_primary.join(", ")
            ));
        }
        // A Galera cluster as its nodes see it: its components, their size, who is in which.
        let seen: Vec<String> = v.components.iter().map(|(view, nodes)| format!("{view}: {}", nodes.join(", "))).collect();
        if v.primary_components() > 1 {
            warnings.push(format!("{}: the nodes see different Primary components ({}): a stale view", v.group, seen.join("; ")));
        } else if !seen.is_empty() {
            notes.push(format!("{}: {}", v.group, seen.join("; ")));
        }
        // A node that serves neither writes nor reads: the group lost redundancy.
        warnings.extend(v.in_no_pool.iter().map(|n| format!("{}: in no pool (lost redundancy): {n}", v.group)));
    }
    // Draining is on purpose: never a problem of its own, but named wherever it empties a pool.
    let summary = match (critical.first(), warnings.first()) {
        (Some(first), _) | (None, Some(first)) => first.clone(),
        (None, None) => format!("{healthy} group(s): one writer and readers each"),
    };
    let healthy_rule = (critical.is_empty() && warnings.is_empty())
        .then(|| Subcheck::passing("every group has exactly one write member and a read member"));
    let subchecks = critical
        .into_iter()
        .map(Subcheck::critical)
        .chain(warnings.into_iter().map(Subcheck::warning))
        .chain(healthy_rule)
        .chain(notes.into_iter().map(Subcheck::passing));
    let measured = [("groups", views.len()), ("critical_groups", views.len() - healthy)]
        .map(|(label, n)| Subcheck::measured(label, Some(n as i64), "", Thresholds::none()));
    Verdict::new(summary, subchecks.chain(measured))
}

/// The services of the selected groups, as the generator lays them out.
pub struct Plan {
    /// Every node's write and read service.
    pub services: Vec<Service>,
    /// The inventory, as named in output.
    pub inventory: String,
}

/// The `check-topology` check.
pub struct Topology;

/// `check-topology`'s heap cap: it runs up to four checks at once in one process.
pub const TOPOLOGY_HEAP_LIMIT: usize = 160 << 20;

/// Memory one node's check may use on its own thread (its connection; the probes it starts have
/// budgets of their own): a node that sends too much fails its own check, not the others.
pub const NODE_CHECK_BUDGET: usize = 16 << 20;

/// Runs one check of the project from its argv, in this process, within `deadline`.
fn run_argv(service: &Service, deadline: &Deadline) -> NodeCheck {
    let node_check = |status, reachable, drained, line, (claims_primary, component)| NodeCheck {
        group: group_label(service),
        node: service.node.clone(),
        role: service.role,
        status,
        reachable,
        drained,
        line,
        claims_primary,
        component,
    };
    let Some(run) = service.check.run else {
        return node_check(Status::Critical, false, false, format!("{} is not a check", service.check.name), (false, None));
    };
    let r = run(&service.args, deadline);
    let line = r.report.render_text().lines().next().unwrap_or_default().to_string();
    let facts = r.report.facts();
    let views = (facts.get("group").is_some_and(claims_primary), facts.get("galera").and_then(component));
    node_check(r.report.status(), r.reachable, r.drained, line, views)
}

/// A Galera node's own view of its component, from its `galera` fact.
fn component(galera: &serde_json::Value) -> Option<String> {
    let status = galera["cluster_status"].as_str()?;
    let size = galera["cluster_size"].as_u64()?;
    Some(match galera["conf_id"].as_u64() {
        Some(conf) if status == "Primary" => format!("Primary component (configuration {conf}) of {size}"),
        _ => format!("{status} component of {size}"),
    })
}

/// Whether a Group Replication member's own view (its `group` fact) lists it ONLINE PRIMARY in
/// single-primary mode.
fn claims_primary(group: &serde_json::Value) -> bool {
    let me = &group["member_id"];
    group["mode"] == "single-primary"
        && group["members"]
            .as_array()
            .is_some_and(|ms| ms.iter().any(|m| &m["id"] == me && m["state"] == "ONLINE" && m["role"] == "PRIMARY"))
}

fn group_label(s: &Service) -> String {
    format!("{} {}:{}", s.kind.as_str(), s.group, s.port)
}

impl Check for Topology {
    const NAME: &'static str = "topology";
    type Args = Args;
    type Target = Plan;

    fn common(args: &Args) -> Common<'_> {
        Common {
            timeout: args.timeout,
            output: &args.output,
            target_hint: args.inventory.display().to_string(),
            password_on_command_line: false,
            drain_file: None,
        }
    }

    fn resolve(args: &Args) -> Result<Plan> {
        // Up to four checks at once, each possibly probing replicas: room for their handshakes.
        crate::memory::set_limit(TOPOLOGY_HEAP_LIMIT);
        let (mut groups, defaults) = read_inventory(&args.inventory)?;
        if !args.groups.is_empty() {
            for name in &args.groups {
                if !groups.iter().any(|g| &g.name == name) {
                    bail!("no group named {name} in {}", args.inventory.display());
                }
            }
            groups.retain(|g| args.groups.contains(&g.name));
        }
        let opts = PlanOptions::from_inventory(&defaults)?;
        Ok(Plan { services: plan(&groups, &opts)?, inventory: args.inventory.display().to_string() })
    }

    fn describe(plan: &Plan) -> String {
        plan.inventory.clone()
    }

    fn evaluate(_args: &Args, plan: &Plan, deadline: &Deadline) -> Result<Outcome> {
        let limit = deadline.limit();
        let checks = probe_all(plan.services.clone(), *deadline, NODE_CHECK_BUDGET, run_argv, move |s: &Service, why| NodeCheck {
            group: group_label(s),
            node: s.node.clone(),
            role: s.role,
            status: Status::Critical,
            reachable: false,
            drained: false,
            line: why.describe(limit),
            claims_primary: false,
            component: None,
        });
        let mut labels: Vec<String> = Vec::new();
        for c in &checks {
            if !labels.contains(&c.group) {
                labels.push(c.group.clone());
            }
        }
        let views: Vec<GroupView> =
            labels.iter().map(|g| GroupView::of(g, &checks.iter().filter(|c| &c.group == g).collect::<Vec<_>>())).collect();
        let verdict = decide(&views);
        let mut facts = Facts::new();
        let groups: Vec<serde_json::Value> = views
            .iter()
            .map(|v| {
                let nodes: Vec<serde_json::Value> = checks
                    .iter()
                    .filter(|c| c.group == v.group)
                    .map(|c| json!({"node": c.node, "service": c.role.word(), "status": c.status, "drained": c.drained, "line": c.line}))
                    .collect();
                let mut group = json!({"group": v.group, "write": v.write, "read": v.read, "checks": nodes});
                if !v.components.is_empty() {
                    group["components"] = v.components.iter().map(|(view, nodes)| json!({"view": view, "nodes": nodes})).collect();
                }
                group
            })
            .collect();
        facts.set("groups", groups);
        // The text view, one line per node as `patronictl list` shows a cluster: where Consul DNS
        // answers with it, and the line of the check that says why.
        let table = checks
            .iter()
            .filter(|c| c.role == Role::Write)
            .map(|w| {
                let read = checks.iter().find(|r| r.role == Role::Read && r.group == w.group && r.node == w.node);
                let pools = match (w.status.in_pool(), read.is_some_and(|r| r.status.in_pool())) {
                    (true, true) => "write, read",
                    (true, false) => "write",
                    (false, true) => "read",
                    (false, false) => "no pool",
                };
                let shown = if w.status.in_pool() { Some(w) } else { read };
                let drained = if w.drained || read.is_some_and(|r| r.drained) { " (drained)" } else { "" };
                format!("{} {}: {pools}{drained}: {}", w.group, w.node, shown.map_or("", |c| c.line.as_str()))
            })
            .collect();
        Ok(Outcome::new(verdict, facts).with_table(table))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(write: &[&str], read: &[&str], unreachable: &[&str], warning: &[&str]) -> GroupView {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
        GroupView {
            group: "redis test:6029".into(),
            write: s(write),
            read: s(read),
            unreachable: s(unreachable),
            warning: s(warning),
            drained: Vec::new(),
            in_no_pool: Vec::new(),
            claim_primary: Vec::new(),
            components: Vec::new(),
        }
    }

    /// The group table: writers x readers x unreachable x warning.
    #[test]
    fn decision_table() {
        for writers in [&[][..], &["a"], &["a", "b"]] {
            for readers in [&[][..], &["b"], &["b", "c"]] {
                for unreachable in [&[][..], &["c"]] {
                    for warning in [&[][..], &["a"]] {
                        let v = decide(&[view(writers, readers, unreachable, warning)]);
                        let expected = if writers.len() != 1 || readers.is_empty() {
                            Status::Critical
                        } else if !unreachable.is_empty() || !warning.is_empty() {
                            Status::Warning
                        } else {
                            Status::Passing
                        };
                        assert_eq!(v.status(), expected, "{writers:?} {readers:?} {unreachable:?} {warning:?}: {v:?}");
                    }
                }
            }
        }
        // Drained is on purpose: named, never a problem of its own, and an emptied pool still is one.
        let mut drained = view(&["a"], &["b"], &[], &[]);
        drained.drained = vec!["c (read)".into()];
        let v = decide(&[drained.clone()]);
        assert_eq!(v.status(), Status::Passing, "{v:?}");
        assert!(v.reasons().contains(&"redis test:6029: drained by the operator: c (read)"), "{v:?}");
        drained.write.clear();
        let v = decide(&[drained]);
        assert_eq!((v.status(), v.summary().as_ref()), (Status::Critical, "redis test:6029: no write member"), "{v:?}");
        assert!(v.reasons().iter().any(|r| r.contains("drained by the operator")), "{v:?}");
        let v = decide(&[view(&["10.0.0.2", "10.0.0.3"], &["10.0.0.4"], &[], &[])]);
        assert_eq!(v.summary(), "redis test:6029: 2 write members (10.0.0.2, 10.0.0.3): split brain");
    }

    /// A node in neither pool (its only replica broken, an old master kept out) is a warning naming
    /// the node and why; one the operator drained is not.
    #[test]
    fn a_node_in_no_pool_is_lost_redundancy() {
        let check = |node: &str, role, status, drained, line: &str| NodeCheck {
            group: "mysql main:3306".into(),
            node: node.into(),
            role,
            status,
            reachable: true,
            drained,
            line: line.into(),
            claims_primary: false,
            component: None,
        };
        let checks = [
            check("m", Role::Write, Status::Passing, false, "MYSQL-MASTER OK"),
            check("m", Role::Read, Status::Passing, false, "MYSQL-SLAVE OK: a single master"),
            check("r", Role::Write, Status::Critical, false, "MYSQL-MASTER CRITICAL: r is a replica"),
            check("r", Role::Read, Status::Critical, false, "MYSQL-SLAVE CRITICAL: r: SQL thread is No"),
        ];
        let v = decide(&[GroupView::of("mysql main:3306", &checks.iter().collect::<Vec<_>>())]);
        assert_eq!(v.status(), Status::Warning, "{v:?}");
        assert_eq!(v.summary(), "mysql main:3306: in no pool (lost redundancy): r: MYSQL-SLAVE CRITICAL: r: SQL thread is No");
        let mut drained = checks.clone();
        drained[3].drained = true;
        assert_eq!(decide(&[GroupView::of("mysql main:3306", &drained.iter().collect::<Vec<_>>())]).status(), Status::Passing);
    }

    /// Two Group Replication members whose own views each say ONLINE PRIMARY: named, a warning
    /// (the checks let only the confirmed one write).
    #[test]
    fn two_members_that_each_think_they_are_primary() {
        let view = |id: &str| {
            serde_json::json!({"mode": "single-primary", "member_id": id, "members": [
                {"id": "a", "state": "ONLINE", "role": "PRIMARY"}, {"id": "b", "state": "ONLINE", "role": if id == "b" { "PRIMARY" } else { "SECONDARY" }}]})
        };
        assert!(claims_primary(&view("a")) && claims_primary(&view("b")));
        assert!(!claims_primary(&serde_json::json!({"mode": "single-primary", "member_id": "c", "members": []})));
        let check = |node: &str, status, claims| NodeCheck {
            group: "mysql group:3306".into(),
            node: node.into(),
            role: Role::Write,
            status,
            reachable: true,
            drained: false,
            line: String::new(),
            claims_primary: claims,
            component: None,
        };
        let (a, b) = (check("a", Status::Passing, true), check("b", Status::Critical, true));
        let read = NodeCheck { role: Role::Read, ..check("c", Status::Passing, false) };
        let v = GroupView::of("mysql group:3306", &[&a, &b, &read]);
        let verdict = decide(&[v]);
        assert_eq!(verdict.status(), Status::Warning);
        assert!(verdict.summary().contains("2 members each think they are the primary (a, b)"), "{}", verdict.summary());
    }

    /// A Galera cluster's components as its nodes see them: a passing line with the size and who is
    /// in which; two Primary components in the nodes' views (a stale one) are a warning.
    #[test]
    fn a_galera_clusters_components_as_its_nodes_see_them() {
        let galera = |status: &str, conf: u64, size: u64| json!({"cluster_status": status, "conf_id": conf, "cluster_size": size});
        assert_eq!(component(&galera("Primary", 7, 3)).as_deref(), Some("Primary component (configuration 7) of 3"));
        assert_eq!(component(&galera("non-Primary", 18446744073709551615, 1)).as_deref(), Some("non-Primary component of 1"));
        assert_eq!(component(&json!({"cluster_status": "Primary"})), None, "no size: no view");
        let check = |node: &str, role, status, view: &str| NodeCheck {
            group: "galera c:3306".into(),
            node: node.into(),
            role,
            status,
            reachable: true,
            drained: false,
            line: format!("{node} line"),
            claims_primary: false,
            component: Some(view.into()),
        };
        let p = "Primary component (configuration 9) of 2";
        let cut = "non-Primary component of 1";
        let checks = [
            check("a", Role::Write, Status::Critical, cut),
            check("a", Role::Read, Status::Critical, cut),
            check("b", Role::Write, Status::Passing, p),
            check("b", Role::Read, Status::Critical, p),
            check("c", Role::Write, Status::Critical, p),
            check("c", Role::Read, Status::Passing, p),
        ];
        let v = GroupView::of("galera c:3306", &checks.iter().collect::<Vec<_>>());
        assert_eq!(v.components, vec![(cut.to_string(), vec!["a".to_string()]), (p.to_string(), vec!["b".to_string(), "c".to_string()])]);
        let verdict = decide(&[v]);
        let line = "galera c:3306: non-Primary component of 1: a; Primary component (configuration 9) of 2: b, c";
        assert!(verdict.reasons().contains(&line), "{:?}", verdict.reasons());
        let stale = [check("a", Role::Read, Status::Passing, "Primary component (configuration 5) of 3"), checks[3].clone()];
        let verdict = decide(&[GroupView::of("galera c:3306", &[&checks[2], &stale[0], &stale[1]])]);
        assert_eq!(verdict.status(), Status::Warning);
        assert!(verdict.summary().contains("the nodes see different Primary components"), "{}", verdict.summary());
    }
}
