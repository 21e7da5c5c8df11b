// A patched crate (patches/<crate>/) is exactly the crates.io crate plus its patch file: checked
// independently of patched_crate.rs (its own unpacking, `git apply` as the patch tool), on the tree
// the build compiled. Included by each patched crate's tests/upstream_plus_patch.rs, which names
// NAME, VERSION, CRATES_IO_SHA256 and INNER_ATTRIBUTES.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

fn out_dir() -> PathBuf {
    PathBuf::from(env!("OUT_DIR"))
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `root`, by path relative to it.
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, into: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == ".git") {
                    continue;
                }
                walk(root, &path, into);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .replace('\\', "/");
                into.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    let mut map = BTreeMap::new();
    walk(root, root, &mut map);
    map
}

/// The published crate unpacked into a fresh directory, with the patch applied by `git apply`.
fn upstream_plus_patch() -> PathBuf {
    let bytes = fs::read(out_dir().join(format!("{NAME}-{VERSION}.crate"))).unwrap();
    let sum: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        sum, CRATES_IO_SHA256,
        "the crate the build used is the one crates.io lists"
    );

    let work = std::env::temp_dir().join(format!("edgemeet-{NAME}-check-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let dest = work.join(entry.path().unwrap());
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        fs::write(dest, data).unwrap();
    }
    let tree = work.join(format!("{NAME}-{VERSION}"));
    // A repository of its own, so `git apply` patches this tree whatever surrounds it.
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(&tree)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "--quiet"]);
    git(&[
        "apply",
        "--whitespace=nowarn",
        manifest_dir()
            .join(format!("{NAME}-{VERSION}.patch"))
            .to_str()
            .unwrap(),
    ]);
    tree
}

#[test]
fn the_built_tree_is_the_crates_io_crate_plus_the_patch_and_nothing_else() {
    let expected_dir = upstream_plus_patch();
    let expected = files(&expected_dir);
    let built = files(&out_dir().join(format!("{NAME}-{VERSION}")));
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&built), names(&expected), "the same files");
    for (name, bytes) in &expected {
        assert!(
            built[name] == *bytes,
            "{name} differs from crates.io + patch"
        );
    }
    // The patch is small: only the files it names differ from the crate.
    let _ = fs::remove_dir_all(expected_dir.parent().unwrap());
}

#[test]
fn the_compiled_lib_is_upstream_lib_rs_with_only_its_inner_attributes_moved_and_mod_paths_given() {
    let lib = fs::read_to_string(out_dir().join(format!("{NAME}-{VERSION}/src/lib.rs"))).unwrap();
    let body = fs::read_to_string(out_dir().join("lib_body.rs")).unwrap();
    // What upstream's lib.rs says that cannot go through `include!`: src/lib.rs here carries it.
    let inner: Vec<&str> = lib.lines().filter(|l| l.starts_with("#![")).collect();
    assert_eq!(
        inner, INNER_ATTRIBUTES,
        "upstream's inner attributes changed: review src/lib.rs"
    );
    let mut kept = Vec::new();
    let mut in_attr = false;
    for l in lib.lines() {
        if in_attr || l.starts_with("#![") {
            in_attr = !l.ends_with(']');
        } else if !l.starts_with("//!") {
            kept.push(l);
        }
    }
    let src = out_dir().join(format!("{NAME}-{VERSION}/src"));
    let mut body_lines = Vec::new();
    for l in body.lines() {
        if let Some(path) = l
            .strip_prefix("#[path = \"")
            .and_then(|p| p.strip_suffix("\"]"))
        {
            assert!(
                Path::new(path).starts_with(&src),
                "{path} is in the built tree"
            );
        } else {
            body_lines.push(l);
        }
    }
    assert_eq!(body_lines, kept);
}

#[test]
fn the_dependencies_and_features_are_upstreams() {
    let ours: toml::Table = fs::read_to_string(manifest_dir().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let theirs: toml::Table =
        fs::read_to_string(out_dir().join(format!("{NAME}-{VERSION}/Cargo.toml")))
            .unwrap()
            .parse()
            .unwrap();
    for key in ["features", "dependencies"] {
        assert_eq!(
            ours.get(key),
            theirs.get(key),
            "[{key}] as crates.io publishes it"
        );
    }
}
