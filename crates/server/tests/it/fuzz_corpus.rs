//! Replays the committed corpora of the server's fuzz targets (`fuzz/corpus/`) through the same
//! property checks the targets run, so every corpus file stays a regression test.

use std::path::PathBuf;

use provisio_server::fuzzing;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    for path in files {
        eprintln!("{}", path.display());
        check(&std::fs::read(&path).unwrap());
    }
}

#[test]
fn endpoint_bodies_corpus() {
    replay("endpoint_bodies", fuzzing::endpoint_bodies);
}

#[test]
fn token_form_corpus() {
    replay("token_form", fuzzing::token_form);
}

#[test]
fn catalog_loader_corpus() {
    replay("catalog_loader", fuzzing::catalog_loader);
}
