//! Replays the committed corpus of the `signature_header` fuzz target (`fuzz/corpus/`) through the
//! same property checks the target runs, so every corpus file stays a regression test.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files.into_iter().map(|path| (path.clone(), std::fs::read(path).unwrap())).collect()
}

#[test]
fn signature_header_corpus() {
    for (path, data) in corpus("signature_header") {
        eprintln!("{}", path.display());
        provisio_protocol::fuzz_checks::signature_header(&data);
    }
}
