// The build script of a crates.io crate plus a patch file (patches/<crate>/build.rs includes
// this after naming the crate, its version and the sha256 crates.io lists): takes the published
// `.crate` (cargo's download cache, else crates.io), checks its sha256, unpacks it into OUT_DIR,
// applies `<crate>-<version>.patch` exactly (every hunk at its stated line, no offset, no fuzz:
// anything else stops the build), and writes `lib_body.rs`, the patched `src/lib.rs` as the
// crate's own `src/lib.rs` `include!`s it (inner attributes moved out, top-level `mod x;` given
// the path of its file). `patched_crate_test.rs` checks the result independently (`git apply`).

use std::fmt::Write as _;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../patched_crate.rs");
    let patch_file = format!("{NAME}-{VERSION}.patch");
    println!("cargo:rerun-if-changed={patch_file}");
    println!("cargo:rerun-if-env-changed={CRATE_ENV}");

    let bytes = crate_bytes(&out);
    // A verified copy beside the tree: the test re-checks both against it.
    let verified = out.join(format!("{NAME}-{VERSION}.crate"));
    if fs::read(&verified).ok().as_deref() != Some(&bytes[..]) {
        fs::write(&verified, &bytes).unwrap();
    }

    let tree = out.join(format!("{NAME}-{VERSION}"));
    if tree.exists() {
        fs::remove_dir_all(&tree).unwrap();
    }
    unpack(&bytes, &out);

    let patch = fs::read_to_string(manifest_dir.join(&patch_file)).unwrap();
    for file in parse_patch(&patch) {
        let path = tree.join(&file.path);
        let original = if file.new_file {
            assert!(
                !path.exists(),
                "{patch_file}: {} exists upstream",
                file.path
            );
            String::new()
        } else {
            fs::read_to_string(&path).unwrap_or_else(|e| panic!("{patch_file}: {}: {e}", file.path))
        };
        let patched =
            apply(&original, &file).unwrap_or_else(|e| panic!("{patch_file}: {}: {e}", file.path));
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).unwrap();
        }
        fs::write(&path, patched).unwrap();
    }

    let lib = fs::read_to_string(tree.join("src/lib.rs")).unwrap();
    fs::write(out.join("lib_body.rs"), lib_body(&lib, &tree.join("src"))).unwrap();
}

/// The published crate: `CRATE_ENV` (a path, for offline builds), else cargo's own
/// download cache, else a copy fetched before into OUT_DIR, else crates.io (`curl`). Only bytes
/// with crates.io's checksum are used.
fn crate_bytes(out: &Path) -> Vec<u8> {
    let file = format!("{NAME}-{VERSION}.crate");
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os(CRATE_ENV) {
        candidates.push(p.into());
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(cache) = cargo_home.map(|h| h.join("registry/cache"))
        && let Ok(dirs) = fs::read_dir(cache)
    {
        candidates.extend(dirs.flatten().map(|d| d.path().join(&file)));
    }
    candidates.push(out.join(&file));
    for path in candidates {
        if let Ok(bytes) = fs::read(&path)
            && sha256_hex(&bytes) == SHA256
        {
            return bytes;
        }
    }
    let url = format!("https://static.crates.io/crates/{NAME}/{VERSION}/download");
    let download = out.join(format!("{file}.download"));
    let status = Command::new("curl")
        .args([
            "--fail",
            "--silent",
            "--show-error",
            "--location",
            "--retry",
            "3",
            "-o",
        ])
        .arg(&download)
        .arg(&url)
        .status()
        .unwrap_or_else(|e| panic!("fetching {file} with curl: {e} (or set {CRATE_ENV})"));
    assert!(status.success(), "fetching {url} failed: {status}");
    let bytes = fs::read(&download).unwrap();
    let _ = fs::remove_file(&download);
    let got = sha256_hex(&bytes);
    assert_eq!(got, SHA256, "{url}: not the crate crates.io lists");
    bytes
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Unpacks the `.crate` (a gzipped tar of `rtc-0.21.1/...`) into `out`.
fn unpack(bytes: &[u8], out: &Path) {
    let prefix = format!("{NAME}-{VERSION}/");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().into_owned();
        let text = path
            .to_str()
            .expect("ascii paths in the crate")
            .replace('\\', "/");
        assert!(
            text.starts_with(&prefix) && !text.split('/').any(|c| c == ".."),
            "unexpected path in the crate: {text}"
        );
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let dest = out.join(&text);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        fs::write(dest, data).unwrap();
    }
}

/// One file's part of a unified diff.
struct FilePatch {
    path: String,
    new_file: bool,
    hunks: Vec<Hunk>,
}

struct Hunk {
    old_start: usize,
    old_len: usize,
    lines: Vec<String>,
}

/// Reads a unified diff (`diff -u` / `git diff` form). Text outside a file's hunks is commentary.
fn parse_patch(text: &str) -> Vec<FilePatch> {
    let mut files: Vec<FilePatch> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(old) = line.strip_prefix("--- ") {
            let new = lines
                .next()
                .and_then(|l| l.strip_prefix("+++ "))
                .expect("+++ after ---");
            let strip = |p: &str| {
                let p = p.split('\t').next().unwrap();
                p.split_once('/')
                    .map(|(_, rest)| rest.to_owned())
                    .unwrap_or_default()
            };
            let new_file = old.starts_with("/dev/null");
            files.push(FilePatch {
                path: strip(new),
                new_file,
                hunks: Vec::new(),
            });
        } else if let Some(header) = line.strip_prefix("@@ -") {
            let (old, rest) = header.split_once(" +").expect("hunk header");
            let new = rest.split_once(" @@").expect("hunk header").0;
            let range = |r: &str| -> (usize, usize) {
                match r.split_once(',') {
                    Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                    None => (r.parse().unwrap(), 1),
                }
            };
            let (old_start, old_len) = range(old);
            let (_, new_len) = range(new);
            let mut hunk = Hunk {
                old_start,
                old_len,
                lines: Vec::new(),
            };
            let (mut o, mut n) = (0, 0);
            while o < old_len || n < new_len {
                let l = lines.next().expect("hunk ends early");
                match l.chars().next() {
                    Some(' ') => (o, n) = (o + 1, n + 1),
                    Some('-') => o += 1,
                    Some('+') => n += 1,
                    None => (o, n) = (o + 1, n + 1), // an empty context line some tools emit
                    _ => panic!("unexpected line in a hunk: {l:?}"),
                }
                hunk.lines.push(l.to_owned());
            }
            assert!(
                lines.peek().is_none_or(|l| !l.starts_with('\\')),
                "\"No newline at end of file\" is not supported"
            );
            files
                .last_mut()
                .expect("a hunk before any file header")
                .hunks
                .push(hunk);
        }
    }
    files
}

/// Applies `file`'s hunks to `original`: each at exactly its stated line, context and removed
/// lines matching byte for byte.
fn apply(original: &str, file: &FilePatch) -> Result<String, String> {
    let old: Vec<&str> = original.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut at = 0; // next line of `old` not yet copied
    for h in &file.hunks {
        let start = if h.old_len == 0 {
            h.old_start
        } else {
            h.old_start - 1
        };
        if start < at || start > old.len() {
            return Err(format!(
                "hunk at line {} out of order or range",
                h.old_start
            ));
        }
        out.extend(old[at..start].iter().map(|s| s.to_string()));
        at = start;
        for l in &h.lines {
            let (tag, body) = l.split_at(l.len().min(1));
            match tag {
                " " | "" | "-" => {
                    if old.get(at) != Some(&body) {
                        return Err(format!(
                            "hunk at line {}: line {} is {:?}, the patch expects {:?}",
                            h.old_start,
                            at + 1,
                            old.get(at),
                            body
                        ));
                    }
                    if tag != "-" {
                        out.push(body.to_owned());
                    }
                    at += 1;
                }
                _ => out.push(body.to_owned()),
            }
        }
    }
    out.extend(old[at..].iter().map(|s| s.to_string()));
    let mut text = out.join("\n");
    text.push('\n');
    Ok(text)
}

/// The patched `src/lib.rs` as an `include!`d file: inner attributes and inner doc comments
/// cannot appear there (`src/lib.rs` here carries what they said), and a top-level `mod x;`
/// would be looked for beside `src/lib.rs` here, so it gets the path of its file in `src`.
fn lib_body(lib: &str, src: &Path) -> String {
    let mut body = String::new();
    let mut in_inner_attr = false;
    for line in lib.lines() {
        let t = line.trim_start();
        if in_inner_attr || t.starts_with("#![") {
            // `#![doc(...)]` spans lines: skip to its closing `]`.
            in_inner_attr = !t.ends_with(']');
            continue;
        }
        if t.starts_with("//!") {
            continue;
        }
        if let Some(name) = t
            .strip_prefix("pub mod ")
            .or_else(|| t.strip_prefix("mod "))
            .and_then(|r| r.strip_suffix(';'))
        {
            let file = [
                src.join(name).join("mod.rs"),
                src.join(format!("{name}.rs")),
            ]
            .into_iter()
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no file for `mod {name};`"));
            let _ = writeln!(body, "#[path = {:?}]", file.to_str().unwrap());
        }
        body.push_str(line);
        body.push('\n');
    }
    body
}
