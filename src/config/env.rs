//! Environment variables in configured paths, as Wazuh's syscheck expands them
//! on Linux (`get_paths_from_env_variable`, `src/config/syscheck-config.c`): an
//! entry that starts with `$` names a variable by all the rest of it (so neither
//! `${HOME}` nor `$HOME/x` is a variable Wazuh can find), and its value may hold
//! several paths separated by `:`, each trimmed, each an entry of its own.

use std::ffi::OsString;

/// What a configured entry stands for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Expansion {
    /// Not a variable: the entry as written.
    Literal,
    /// The paths the variable holds, empty pieces left out, and a warning for
    /// each piece left out.
    Paths(Vec<String>, Vec<String>),
    /// A variable that is not set, or holds nothing: nothing to monitor. Wazuh
    /// logs "Could not expand the environment variable" and goes on with the
    /// variable's bare name as a (relative, never found) path; fimvt uses none.
    Unset(String),
}

/// Expands `entry` (already trimmed) with `lookup` (`std::env::var_os` outside tests).
pub(super) fn expand(entry: &str, lookup: impl Fn(&str) -> Option<OsString>) -> Expansion {
    let Some(name) = entry.strip_prefix('$') else {
        return Expansion::Literal;
    };
    let value = lookup(name).filter(|v| !v.is_empty()).map(|v| v.to_string_lossy().into_owned());
    let Some(value) = value else {
        return Expansion::Unset(format!(
            "{entry}: could not expand the environment variable {name} (not set, or empty): not used, as in Wazuh"
        ));
    };
    let mut warnings = Vec::new();
    let mut paths = Vec::new();
    // Wazuh splits with strtok (`::` is one separator), then trims each piece and
    // warns about one left empty.
    for piece in value.split(':').filter(|p| !p.is_empty()).map(str::trim) {
        if piece.is_empty() {
            warnings.push(format!("{entry}: a blank path in the environment variable {name}, left out"));
        } else {
            paths.push(piece.to_string());
        }
    }
    Expansion::Paths(paths, warnings)
}

/// `expand` against fimvt's own environment.
pub(super) fn expand_here(entry: &str) -> Expansion {
    expand(entry, |name| std::env::var_os(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<OsString> {
        match name {
            "ONE" => Some("/srv/www".into()),
            "MANY" => Some(" /a : /b/c ::/d: :".into()),
            "EMPTY" => Some("".into()),
            _ => None,
        }
    }

    #[test]
    fn a_leading_dollar_names_a_variable_whose_value_may_hold_several_paths() {
        assert_eq!(expand("/etc", env), Expansion::Literal);
        assert_eq!(expand("/etc/$ONE", env), Expansion::Literal, "only a leading $ is a variable");
        assert_eq!(expand("$ONE", env), Expansion::Paths(vec!["/srv/www".into()], vec![]));
        let Expansion::Paths(paths, warnings) = expand("$MANY", env) else { panic!("MANY is set") };
        assert_eq!(paths, ["/a", "/b/c", "/d"]);
        assert_eq!(warnings.len(), 1, "`::` is one separator, a blank piece is named: {warnings:?}");
    }

    #[test]
    fn an_unset_or_empty_variable_gives_nothing_and_a_warning_naming_it() {
        for entry in ["$NOPE", "$EMPTY", "${ONE}", "$ONE/sub"] {
            let Expansion::Unset(w) = expand(entry, env) else { panic!("{entry} must not expand") };
            assert!(w.starts_with(entry) && w.contains("could not expand"), "{w}");
        }
    }
}
