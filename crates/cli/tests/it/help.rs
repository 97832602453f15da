//! Every flag, argument and subcommand of the `provisio` binary says what it does: walks the command
//! tree through the binary's own `--help` (the "Commands:" section names the subcommands) and fails
//! on any entry whose help text is empty once clap's `[default: …]`, `[env: …]` and
//! `[possible values: …]` annotations are taken away.

use std::process::Command;

/// `provisio <path…> --help`, with nothing in the environment that changes what it prints.
fn help(path: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args(path)
        .arg("--help")
        .env_remove("PROVISIO_BASE_URL")
        .env_remove("PROVISIO_SIGNING_SECRET")
        .env_remove("PROVISIO_CONFIG")
        .env_remove("PROVISIO_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "provisio {} --help failed: {stdout}{}",
        path.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// One entry of a help section: its name (the flag, argument or subcommand) and its help text.
#[derive(Debug)]
struct Entry {
    section: String,
    name: String,
    text: String,
}

/// The entries of every section (`Commands:`, `Arguments:`, `Options:` or a custom heading). An
/// entry starts on a line indented by at most six spaces; its help follows the name after two or
/// more spaces on that line, or on the deeper-indented lines after it (clap's long format).
fn entries(help: &str) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut section: Option<String> = None;
    // Sections follow the `Usage:` line; the about text before it is prose.
    let mut after_usage = false;
    for line in help.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent == 0 {
            if line.starts_with("Usage:") {
                after_usage = true;
                section = None;
            } else if after_usage {
                section = line.strip_suffix(':').map(str::to_string);
            }
            continue;
        }
        let Some(section) = &section else { continue };
        // Names sit at two spaces (six for a long flag without a short one); help lines of the
        // long format at ten, wrapped help in the compact one at the help column.
        if indent <= 6 {
            let spec = line.trim_start();
            let (name, text) = spec.split_once("  ").unwrap_or((spec, ""));
            entries.push(Entry {
                section: section.clone(),
                name: name.trim().to_string(),
                text: text.trim().to_string(),
            });
        } else if let Some(last) = entries.last_mut() {
            last.text.push(' ');
            last.text.push_str(line.trim());
        }
    }
    entries
}

/// The help text without what clap adds by itself.
fn own_words(text: &str) -> String {
    let mut text = text.to_string();
    for annotation in
        ["[default: ", "[env: ", "[possible values: ", "[aliases: ", "[alias: ", "[short alias"]
    {
        while let Some(start) = text.find(annotation) {
            let end = text[start..].find(']').map_or(text.len(), |e| start + e + 1);
            text.replace_range(start..end, "");
        }
    }
    // The long format's list of documented values ("Possible values:", "- name: help").
    if let Some(start) = text.find("Possible values:") {
        text.truncate(start);
    }
    text.trim().to_string()
}

/// Every command path under `path`, depth first, with the entries its help shows.
fn walk(path: Vec<String>, seen: &mut Vec<(Vec<String>, Vec<Entry>)>) {
    let entries = entries(&help(&path));
    let subcommands: Vec<String> = entries
        .iter()
        .filter(|e| e.section == "Commands" && e.name != "help")
        .map(|e| e.name.clone())
        .collect();
    seen.push((path.clone(), entries));
    for sub in subcommands {
        let mut child = path.clone();
        child.push(sub);
        walk(child, seen);
    }
}

#[test]
fn every_flag_and_subcommand_has_help() {
    let mut commands = Vec::new();
    walk(Vec::new(), &mut commands);
    let mut missing = Vec::new();
    for (path, entries) in &commands {
        for entry in entries {
            if own_words(&entry.text).is_empty() {
                missing.push(format!(
                    "provisio {} — {} {}",
                    path.join(" "),
                    entry.section,
                    entry.name
                ));
            }
        }
    }
    assert!(missing.is_empty(), "without help text:\n{}", missing.join("\n"));

    // The walk saw the whole tree, not just its top: nested subcommands and their flags.
    let paths: Vec<String> = commands.iter().map(|(p, _)| p.join(" ")).collect();
    for expected in ["serve", "orchestrator token", "conformance", "bench", "admin"] {
        assert!(paths.iter().any(|p| p == expected), "{expected} not walked: {paths:?}");
    }
    assert!(paths.iter().any(|p| p.starts_with("admin ")), "admin's subcommands: {paths:?}");
    let token = commands.iter().find(|(p, _)| p.join(" ") == "orchestrator token");
    let flags: Vec<&str> =
        token.map(|(_, e)| e.iter().map(|e| e.name.as_str()).collect()).unwrap_or_default();
    assert!(flags.contains(&"--code <CODE>"), "{flags:?}");
}

#[test]
fn the_parser_sees_empty_help_in_both_layouts() {
    let compact = "Usage: x\n\nOptions:\n      --named <N>  Says what\n      --blank <B>\n      \
                   --dflt <D>  [default: 1]\n  -h, --help  Print help\n";
    let long = "About: x\n\nUsage: x\n\nArguments:\n  [ID]\n          \n\nOptions:\n      --code <CODE>\n          \n      \
                --kind <K>\n          [possible values: a, b]\n      --named\n          Says what\n";
    let blank = |help: &str| -> Vec<String> {
        entries(help)
            .into_iter()
            .filter(|e| own_words(&e.text).is_empty())
            .map(|e| e.name)
            .collect()
    };
    assert_eq!(blank(compact), ["--blank <B>", "--dflt <D>"]);
    assert_eq!(blank(long), ["[ID]", "--code <CODE>", "--kind <K>"]);
}
