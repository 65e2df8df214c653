//! Reads a Wazuh `ossec.conf` for operators migrating from Wazuh: the
//! `<syscheck>` blocks (`<directories>` with `realtime`, `check_all`,
//! `recursion_level`, `restrict`, `tags`; `<ignore>`, plain and `type="sregex"`;
//! a path or plain ignore that is a `$VARIABLE` expanded as Wazuh does;
//! `<frequency>`, `<scan_time>`, `<scan_day>`, `<scan_on_start>`,
//! `<max_files_per_second>`, `<process_priority>`, 10 when absent as in Wazuh) and the VirusTotal
//! `<integration>`'s `<api_key>`. It produces the same raw configuration the
//! TOML reader does, so validation and its errors (file, line, key) are shared.
//! Every option it does not support comes back as a warning naming it: nothing
//! is dropped silently.

use std::ops::Range;

use quick_xml::Reader;
use quick_xml::events::Event;
use toml::Spanned;

use super::env;
use super::raw::{DurationValue, RawConfig, RawDirectory};

/// An element, with the byte offset of its start tag (for error lines).
#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    offset: usize,
    children: Vec<Node>,
}

/// A problem in the file: byte offset, key, message.
pub(super) type ReadError = (usize, String, String);

/// Whether the text is XML (an ossec.conf) rather than TOML.
pub(super) fn looks_like_xml(text: &str) -> bool {
    text.trim_start_matches('\u{feff}').trim_start().starts_with('<')
}

fn parse(text: &str) -> Result<Node, ReadError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut stack = vec![Node { name: "(document)".into(), ..Default::default() }];
    loop {
        let offset = reader.buffer_position() as usize;
        let ev = reader.read_event().map_err(|e| {
            (reader.error_position() as usize, "(xml)".to_string(), format!("not well-formed XML: {e}"))
        })?;
        match ev {
            // The tag's own offset (whitespace before it is trimmed away): back
            // from where the reader stands by the tag's length, `<`, `>` and `/`.
            Event::Start(e) => {
                let at = (reader.buffer_position() as usize).saturating_sub(e.len() + 2);
                stack.push(element(&e, at)?)
            }
            // An empty element (`<x/>`) has no end event.
            Event::Empty(e) => {
                let at = (reader.buffer_position() as usize).saturating_sub(e.len() + 3);
                let node = element(&e, at)?;
                stack.last_mut().expect("document").children.push(node);
            }
            Event::End(_) => {
                let node = stack.pop().expect("balanced by the reader");
                stack
                    .last_mut()
                    .ok_or((offset, node.name.clone(), "unbalanced end tag".to_string()))?
                    .children
                    .push(node);
            }
            Event::Text(t) => stack.last_mut().expect("document").text.push_str(&t),
            Event::CData(t) => stack.last_mut().expect("document").text.push_str(&t.into_inner()),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => quick_xml::escape::resolve_predefined_entity(&r).unwrap_or("").to_string(),
                };
                stack.last_mut().expect("document").text.push_str(&resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        let open = stack.last().map(|n| n.name.clone()).unwrap_or_default();
        return Err((text.len(), open.clone(), format!("<{open}> is not closed (the file is truncated?)")));
    }
    Ok(stack.pop().expect("document"))
}

fn element(e: &quick_xml::events::BytesStart<'_>, offset: usize) -> Result<Node, ReadError> {
    let mut node = Node { name: e.name().as_ref().to_string(), offset, ..Default::default() };
    for a in e.attributes() {
        let a = a.map_err(|err| (offset, node.name.clone(), format!("bad attribute: {err}")))?;
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|err| (offset, node.name.clone(), format!("bad attribute: {err}")))?;
        node.attrs.push((a.key.as_ref().to_string(), value.into_owned()));
    }
    Ok(node)
}

fn yes_no(v: &str) -> Option<bool> {
    match v.trim() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Wazuh's "sregex" (OS_Match, `os_regex/os_match_compile.c`) as a pattern fimvt
/// reads (`config::Pattern`): a leading `!` negates the whole; `|` separates
/// alternatives, each anchored by a leading `^` and a trailing `$`, an empty one
/// matching everything; everything else is literal; case is ignored, as syscheck
/// compiles its patterns without `OS_CASE_SENSITIVE`.
fn sregex_to_regex(s: &str) -> String {
    let (negate, s) = s.strip_prefix('!').map_or(("", s), |r| ("!", r));
    let alts: Vec<String> = s
        .split('|')
        .map(|alt| {
            let (start, rest) = alt.strip_prefix('^').map_or(("", alt), |r| ("^", r));
            let (body, end) = rest.strip_suffix('$').map_or((rest, ""), |b| (b, "$"));
            format!("{start}{}{end}", regex::escape(body))
        })
        .collect();
    format!("{negate}(?i:{})", alts.join("|"))
}

fn spanned<T>(offset: usize, value: T) -> Spanned<T> {
    let range: Range<usize> = offset..offset;
    Spanned::new(range, value)
}

/// Turns the file into a raw configuration and the list of what was not used.
pub(super) fn read(text: &str) -> Result<(RawConfig, Vec<String>), ReadError> {
    let doc = parse(text)?;
    let mut raw = RawConfig::default();
    let mut warnings = Vec::new();
    let mut ignores: Vec<(usize, String)> = Vec::new();
    let mut ignore_regexes: Vec<(usize, String)> = Vec::new();
    let roots: Vec<&Node> = doc.children.iter().collect();
    for root in roots {
        if root.name != "ossec_config" {
            warnings.push(format!("<{}>: not an <ossec_config> block, not used", root.name));
            continue;
        }
        for section in &root.children {
            match section.name.as_str() {
                "syscheck" => syscheck(section, &mut raw, &mut ignores, &mut ignore_regexes, &mut warnings)?,
                "integration" => integration(section, &mut raw, &mut warnings),
                other => warnings.push(format!("<{other}>: not used by fimvt")),
            }
        }
    }
    // Wazuh's syscheckd runs at nice 10 unless told otherwise.
    if raw.general.process_priority.is_none() {
        raw.general.process_priority = Some(spanned(0, i64::from(super::WAZUH_PROCESS_PRIORITY)));
    }
    // Wazuh's ignores apply to every monitored folder.
    for d in &mut raw.directories {
        for (offset, path) in &ignores {
            let escaped = globset::escape(path);
            d.ignore.push(spanned(*offset, escaped.clone()));
            d.ignore.push(spanned(*offset, format!("{escaped}/**")));
        }
        for (offset, re) in &ignore_regexes {
            d.ignore_regex.push(spanned(*offset, re.clone()));
        }
    }
    Ok((raw, warnings))
}

fn syscheck(
    node: &Node,
    raw: &mut RawConfig,
    ignores: &mut Vec<(usize, String)>,
    ignore_regexes: &mut Vec<(usize, String)>,
    warnings: &mut Vec<String>,
) -> Result<(), ReadError> {
    for c in &node.children {
        let bad = |what: &str| (c.offset, format!("syscheck.{}", c.name), what.to_string());
        match c.name.as_str() {
            "directories" => directories(c, raw, warnings)?,
            "ignore" => match c.attrs.iter().find(|(k, _)| k == "type").map(|(_, v)| v.as_str()) {
                None => {
                    for path in expanded(c.text.trim(), warnings) {
                        ignores.push((c.offset, path));
                    }
                }
                Some("sregex") => ignore_regexes.push((c.offset, sregex_to_regex(c.text.trim()))),
                Some(other) => warnings
                    .push(format!("<ignore type=\"{other}\">: only plain and sregex ignores are supported; not used")),
            },
            "frequency" => {
                let secs: i64 = c.text.trim().parse().map_err(|_| bad("expected a number of seconds"))?;
                raw.scan.frequency = Some(spanned(c.offset, DurationValue::Seconds(secs)));
            }
            "process_priority" => {
                let p: i64 = c.text.trim().parse().map_err(|_| bad("expected a nice value, -20 to 19"))?;
                if !(-20..=19).contains(&p) {
                    return Err(bad("out of range: expected a nice value, -20 to 19"));
                }
                raw.general.process_priority = Some(spanned(c.offset, p));
            }
            // Wazuh's `syscheck-config.c`: exactly `yes` or `no`, else the block is refused.
            "skip_nfs" | "skip_dev" | "skip_sys" | "skip_proc" => {
                let on = yes_no(&c.text).ok_or_else(|| bad("expected yes or no"))?;
                let slot = match c.name.as_str() {
                    "skip_nfs" => &mut raw.scan.skip_nfs,
                    "skip_dev" => &mut raw.scan.skip_dev,
                    "skip_sys" => &mut raw.scan.skip_sys,
                    _ => &mut raw.scan.skip_proc,
                };
                *slot = Some(on);
            }
            // Refused as Wazuh refuses them (`OS_IsValidUniqueTime`, `OS_IsValidDay`).
            "scan_time" => {
                super::schedule::parse_time(&c.text).map_err(|m| bad(&m))?;
                raw.scan.time = Some(spanned(c.offset, c.text.trim().to_string()));
            }
            "scan_day" => {
                super::schedule::parse_days(&c.text).map_err(|m| bad(&m))?;
                raw.scan.day = Some(spanned(c.offset, c.text.trim().to_string()));
            }
            // Wazuh's `OS_StrIsNum` then `atoi`: digits only, and nothing is 0.
            "max_files_per_second" => {
                let t = c.text.trim();
                let n = if t.is_empty() {
                    0
                } else if t.bytes().all(|b| b.is_ascii_digit()) {
                    t.parse::<u32>().map_err(|_| bad("too large: expected at most 4294967295"))?
                } else {
                    return Err(bad("expected a whole number of files per second, 0 for no limit"));
                };
                raw.scan.max_files_per_second = Some(spanned(c.offset, i64::from(n)));
            }
            "scan_on_start" => {
                raw.scan.scan_on_start = Some(yes_no(&c.text).ok_or_else(|| bad("expected yes or no"))?);
            }
            // Wazuh's syscheckd has not read it since 3.11 (its `<global>` twin only
            // filters the checksum messages of pre-3.x agents): new files raise 554.
            "alert_new_files" => warnings.push(format!(
                "<syscheck><alert_new_files>{}</alert_new_files>: ignored, as Wazuh 4.x ignores it; new files always raise 554",
                c.text.trim()
            )),
            "disabled" => {
                if yes_no(&c.text) == Some(true) {
                    warnings.push("<syscheck><disabled>yes</disabled>: fimvt monitors the folders anyway".into());
                }
            }
            other => warnings.push(format!("<syscheck><{other}>: not supported by fimvt, not used")),
        }
    }
    Ok(())
}

fn directories(c: &Node, raw: &mut RawConfig, warnings: &mut Vec<String>) -> Result<(), ReadError> {
    let mut realtime = false;
    let mut recursion_level = None;
    let mut restrict = None;
    let mut follow_symlinks = false;
    let mut tags = Vec::new();
    for (k, v) in &c.attrs {
        let bad = |what: &str| (c.offset, format!("syscheck.directories.{k}"), what.to_string());
        match k.as_str() {
            "realtime" => realtime = yes_no(v).ok_or_else(|| bad("expected yes or no"))?,
            "check_all" if yes_no(v) == Some(true) => {}
            "recursion_level" => {
                recursion_level =
                    Some(spanned(c.offset, v.trim().parse::<i64>().map_err(|_| bad("expected a number"))?));
            }
            "restrict" => restrict = Some(spanned(c.offset, sregex_to_regex(v))),
            "follow_symbolic_link" => follow_symlinks = yes_no(v).ok_or_else(|| bad("expected yes or no"))?,
            "tags" => tags = split_tags(v).into_iter().map(|t| spanned(c.offset, t)).collect(),
            k if k.starts_with("check_") => {
                warnings.push(format!("<directories {k}=\"{v}\">: fimvt always checks every attribute; not used"))
            }
            other => warnings.push(format!("<directories {other}=\"{v}\">: not supported by fimvt, not used")),
        }
    }
    for path in split_paths(&c.text).iter().flat_map(|p| expanded(p, warnings)) {
        raw.directories.push(RawDirectory {
            path: spanned(c.offset, path),
            realtime,
            recursion_level: recursion_level.clone(),
            ignore: Vec::new(),
            ignore_regex: Vec::new(),
            restrict: restrict.clone(),
            follow_symlinks,
            max_file_size: None,
            tags: tags.clone(),
        });
    }
    Ok(())
}

/// An entry with its environment variable expanded (`config::env`): the paths
/// it stands for, what could not be used named in `warnings`.
fn expanded(entry: &str, warnings: &mut Vec<String>) -> Vec<String> {
    match env::expand_here(entry) {
        env::Expansion::Literal => vec![entry.to_string()],
        env::Expansion::Paths(paths, w) => {
            warnings.extend(w);
            paths
        }
        env::Expansion::Unset(w) => {
            warnings.push(w);
            Vec::new()
        }
    }
}

/// A `tags` attribute as Wazuh reads it: spaces, `!` and `:` removed, then
/// split on commas, empty tags dropped.
fn split_tags(v: &str) -> Vec<String> {
    let clean: String = v.chars().filter(|c| !matches!(c, ' ' | '!' | ':')).collect();
    clean.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect()
}

/// A `<directories>` list: paths separated by commas, where `\,` is a comma
/// inside a path, as Wazuh reads it.
fn split_paths(text: &str) -> Vec<String> {
    let mut paths = vec![String::new()];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => paths.last_mut().expect("one").push(chars.next().expect("peeked")),
            ',' => paths.push(String::new()),
            c => paths.last_mut().expect("one").push(c),
        }
    }
    paths.into_iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
}

fn integration(node: &Node, raw: &mut RawConfig, warnings: &mut Vec<String>) {
    let name = node.children.iter().find(|c| c.name == "name").map(|c| c.text.trim().to_string());
    if name.as_deref() != Some("virustotal") {
        warnings.push(format!("<integration> {}: only the virustotal integration is used", name.unwrap_or_default()));
        return;
    }
    for c in &node.children {
        match c.name.as_str() {
            "name" => {}
            "api_key" => {
                raw.virustotal.enabled = true;
                raw.virustotal.api_key = Some(c.text.trim().to_string());
            }
            "hook_url" => raw.virustotal.base_url = Some(spanned(c.offset, c.text.trim().to_string())),
            other => warnings.push(format!("<integration><{other}>: not supported by fimvt, not used")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<!-- A Wazuh configuration -->
<ossec_config>
  <global><jsonout_output>yes</jsonout_output></global>
  <syscheck>
    <disabled>no</disabled>
    <frequency>43200</frequency>
    <scan_on_start>yes</scan_on_start>
    <directories check_all="yes" realtime="yes" recursion_level="3" report_changes="yes">/a,/b</directories>
    <ignore>/a/skip me</ignore>
    <ignore type="sregex">.log$|^/a/tmp</ignore>
    <alert_new_files>yes</alert_new_files>
  </syscheck>
  <integration>
    <name>virustotal</name>
    <api_key>K&amp;Y</api_key>
    <group>syscheck</group>
  </integration>
</ossec_config>
"#;

    #[test]
    fn tags_lose_spaces_bangs_and_colons_as_in_wazuh() {
        assert_eq!(split_tags(" a , b:c,,!d "), ["a", "bc", "d"]);
        assert!(split_tags(" , ").is_empty());
    }

    #[test]
    fn directory_lists_split_on_commas_but_not_escaped_ones() {
        assert_eq!(split_paths(" /a , /b,,/c "), ["/a", "/b", "/c"]);
        assert_eq!(split_paths(r"/srv/a\,b,/srv/c"), ["/srv/a,b", "/srv/c"]);
        assert_eq!(split_paths(r"/x\y"), [r"/x\y"], "a backslash before anything else stays");
    }

    #[test]
    fn the_supported_parts_are_read_and_the_rest_named() {
        let (raw, warnings) = read(SAMPLE).unwrap();
        assert_eq!(raw.directories.len(), 2);
        let d = &raw.directories[1];
        assert_eq!(d.path.get_ref(), "/b");
        assert!(d.realtime);
        assert_eq!(d.recursion_level.as_ref().map(|r| *r.get_ref()), Some(3));
        let globs: Vec<&String> = d.ignore.iter().map(|g| g.get_ref()).collect();
        assert_eq!(globs, ["/a/skip me", "/a/skip me/**"]);
        assert_eq!(d.ignore_regex[0].get_ref(), r"(?i:\.log$|^/a/tmp)");
        assert!(matches!(raw.scan.frequency.as_ref().map(|f| f.get_ref()), Some(DurationValue::Seconds(43200))));
        assert_eq!(raw.scan.scan_on_start, Some(true));
        assert!(raw.virustotal.enabled);
        assert_eq!(raw.virustotal.api_key.as_deref(), Some("K&Y"));
        let all = warnings.join("\n");
        for name in ["report_changes", "alert_new_files", "<group>", "<global>"] {
            assert!(all.contains(name), "{name} not reported in:\n{all}");
        }
    }

    #[test]
    fn skip_options_are_read_and_anything_but_yes_or_no_is_refused() {
        let conf = |body: &str| {
            format!("<ossec_config><syscheck>{body}<directories>/a</directories></syscheck></ossec_config>")
        };
        let (raw, warnings) = read(&conf(
            "<skip_nfs>no</skip_nfs><skip_dev>yes</skip_dev><skip_sys>no</skip_sys><skip_proc>no</skip_proc>",
        ))
        .unwrap();
        assert_eq!(
            (raw.scan.skip_nfs, raw.scan.skip_dev, raw.scan.skip_sys, raw.scan.skip_proc),
            (Some(false), Some(true), Some(false), Some(false))
        );
        assert!(warnings.iter().all(|w| !w.contains("skip_")), "{warnings:?}");
        let Err((_, key, _)) = read(&conf("<skip_proc>maybe</skip_proc>")) else { panic!("maybe is no yes/no") };
        assert_eq!(key, "syscheck.skip_proc");
    }

    #[test]
    fn truncated_and_malformed_files_are_errors_with_a_place() {
        let cut = &SAMPLE[..SAMPLE.find("</syscheck>").unwrap()];
        let Err((offset, key, message)) = read(cut) else { panic!("a truncated file must not parse") };
        assert!(offset > 0 && message.contains("not closed"), "{key}: {message}");
        let Err((_, key, _)) = read("<ossec_config><syscheck><frequency>soon</frequency></syscheck></ossec_config>")
        else {
            panic!("a bad frequency must not parse")
        };
        assert_eq!(key, "syscheck.frequency");
        assert!(read("<ossec_config><syscheck></ossec_config>").is_err());
    }

    #[test]
    fn sregex_is_literal_but_for_anchors_and_alternation() {
        let re = super::super::Pattern::new(&sregex_to_regex(".log$|^/tmp")).unwrap();
        assert!(re.is_match("/x/a.log") && re.is_match("/tmp/x"));
        assert!(!re.is_match("/x/alog"), "the dot is literal in sregex");
        assert!(!re.is_match("/x/tmp"), "^ anchors at the start");
    }

    /// OS_Match as `os_match_compile.c` and `os_match_execute.c` define it.
    #[test]
    fn sregex_has_wazuhs_negation_case_folding_exact_match_and_empty_alternative() {
        let m =
            |pattern: &str, path: &str| super::super::Pattern::new(&sregex_to_regex(pattern)).unwrap().is_match(path);
        assert!(m("!.exe$", "/w/notes.txt") && !m("!.exe$", "/w/setup.exe"), "! negates the whole pattern");
        assert!(!m("!.exe$|.msi$", "/w/a.msi"), "...every alternative of it");
        assert!(m(".EXE$", "/w/setup.exe") && m("^/W/", "/w/x"), "case is ignored");
        assert!(m("^/w/a$", "/w/a") && !m("^/w/a$", "/w/ab"), "^...$ is the whole path");
        assert!(m("a$b", "/x/a$b"), "a $ inside an alternative is literal");
        assert!(m("x|", "/anything"), "an empty alternative matches everything");
    }
}
