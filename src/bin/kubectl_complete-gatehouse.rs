//! `kubectl_complete-gatehouse`: the completion helper kubectl 1.26+ looks for on
//! PATH when completing `kubectl gatehouse ...`. kubectl runs it with the words
//! after `gatehouse` (the last one under the cursor) and reads candidates from its
//! output; this hands them to `kubectl-gatehouse __complete`, found next to this
//! file or else on PATH. Standard library only, so it stays tiny.

use std::process::Command;

const PLUGIN: &str = "kubectl-gatehouse";

fn main() {
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|me| me.parent().map(|dir| dir.join(PLUGIN)))
        .filter(|p| p.is_file());
    let program = sibling.map_or_else(|| PLUGIN.into(), |p| p.into_os_string());
    let status = Command::new(program)
        .arg("__complete")
        .args(std::env::args_os().skip(1))
        .status();
    // kubectl ignores the output of a helper that fails, so failing is the quiet way out.
    std::process::exit(match status {
        Ok(s) => s.code().unwrap_or(1),
        Err(_) => 1,
    });
}
