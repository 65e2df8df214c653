//! Wazuh-compatible alerts: the rule table, pure formatting of alerts.log and
//! alerts.json entries ([`format`]), and the one sink that appends them ([`sink`]).
//! Nothing here reads the filesystem being monitored or touches the database.

pub mod format;
pub mod sink;
pub mod vt;

pub use sink::AlertSink;

use crate::fim::EventKind;

/// Who raises the alerts: the names in every alert header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Host name in the alerts.log header and `manager.name`.
    pub hostname: String,
    pub agent_id: String,
    pub agent_name: String,
}

impl Identity {
    pub fn from_config(general: &crate::config::General) -> Identity {
        Identity {
            hostname: general.hostname.clone(),
            agent_id: general.agent_id.clone(),
            agent_name: general.agent_name.clone(),
        }
    }
}

/// A MITRE ATT&CK technique a rule names, with the tactic and name Wazuh's MITRE
/// database gives it (alerts.json `rule.mitre`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Technique {
    pub id: &'static str,
    pub tactic: &'static str,
    pub name: &'static str,
}

const T1565_001: Technique = Technique { id: "T1565.001", tactic: "Impact", name: "Stored Data Manipulation" };
const T1070_004: Technique = Technique { id: "T1070.004", tactic: "Defense Evasion", name: "File Deletion" };
const T1485: Technique = Technique { id: "T1485", tactic: "Impact", name: "Data Destruction" };
pub(crate) const T1203: Technique =
    Technique { id: "T1203", tactic: "Execution", name: "Exploitation for Client Execution" };

/// One rule of Wazuh's ruleset, as far as the alert text needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub id: u32,
    pub level: u32,
    pub description: &'static str,
    /// Every group, compliance ones included, in Wazuh's order.
    pub groups: &'static [&'static str],
    pub mail: bool,
    /// The rule's `<mitre>` ids, in the rule's order.
    pub mitre: &'static [Technique],
    /// The rule's `no_full_log` option: alerts.json has no `full_log` (alerts.log
    /// still shows it).
    pub no_full_log: bool,
    /// alerts.json `decoder.name` and the alerts.log location after `->`.
    pub decoder: &'static str,
    pub location: &'static str,
}

const FIM_COMPLIANCE: [&str; 12] = [
    "pci_dss_11.5",
    "gpg13_4.11",
    "gdpr_II_5.1.f",
    "hipaa_164.312.c.1",
    "hipaa_164.312.c.2",
    "nist_800_53_SI.7",
    "tsc_PI1.4",
    "tsc_PI1.5",
    "tsc_CC6.1",
    "tsc_CC6.8",
    "tsc_CC7.2",
    "tsc_CC7.3",
];

macro_rules! fim_groups {
    ($extra:literal) => {
        &[
            "ossec",
            "syscheck",
            $extra,
            "syscheck_file",
            FIM_COMPLIANCE[0],
            FIM_COMPLIANCE[1],
            FIM_COMPLIANCE[2],
            FIM_COMPLIANCE[3],
            FIM_COMPLIANCE[4],
            FIM_COMPLIANCE[5],
            FIM_COMPLIANCE[6],
            FIM_COMPLIANCE[7],
            FIM_COMPLIANCE[8],
            FIM_COMPLIANCE[9],
            FIM_COMPLIANCE[10],
            FIM_COMPLIANCE[11],
        ]
    };
}

pub const RULE_ADDED: Rule = Rule {
    id: 554,
    level: 5,
    description: "File added to the system.",
    groups: fim_groups!("syscheck_entry_added"),
    mail: false,
    mitre: &[],
    no_full_log: false,
    decoder: "syscheck_new_entry",
    location: "syscheck",
};

pub const RULE_MODIFIED: Rule = Rule {
    id: 550,
    level: 7,
    description: "Integrity checksum changed.",
    groups: fim_groups!("syscheck_entry_modified"),
    mail: false,
    mitre: &[T1565_001],
    no_full_log: false,
    decoder: "syscheck_integrity_changed",
    location: "syscheck",
};

pub const RULE_DELETED: Rule = Rule {
    id: 553,
    level: 7,
    description: "File deleted.",
    groups: fim_groups!("syscheck_entry_deleted"),
    mail: false,
    mitre: &[T1070_004, T1485],
    no_full_log: false,
    decoder: "syscheck_deleted",
    location: "syscheck",
};

pub fn fim_rule(kind: EventKind) -> &'static Rule {
    match kind {
        EventKind::Added => &RULE_ADDED,
        EventKind::Modified => &RULE_MODIFIED,
        EventKind::Deleted => &RULE_DELETED,
    }
}
