//! `cargo xtask package`: every published crate can be released as it is.
//!
//! Four checks, cheapest first:
//! 1. the workspace `rust-version` is no older than any dependency's declared
//!    `rust-version` (from `cargo metadata` with every feature on, every
//!    platform), so the number we publish is not a promise a dependency
//!    already breaks;
//! 2. clippy's `incompatible_msrv` with every feature on: no standard-library
//!    API newer than that `rust-version` in our own code (the default-feature
//!    clippy run of `cargo xtask ci` already covers the rest);
//! 3. `cargo package` of every published crate, verified: each one is built
//!    alone from its `.crate` file, its workspace dependencies taken from the
//!    other freshly packaged crates (cargo's local registry overlay). This
//!    catches a file left out of a package, a dependency that only a path or
//!    another crate's features made work, and a publish cycle;
//! 4. when the declared `rust-version`'s toolchain is installed, every crate
//!    checked with it, every feature on. Neither check above sees a language
//!    feature newer than the declared version (let chains need 1.88), only
//!    this build does; where that toolchain is missing (it cannot always be
//!    fetched) the task says so and goes on.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::process::{run, run_with_env};

pub const USAGE: &str = "usage: cargo xtask package
  Proves every published crate can be released:
  1. the workspace rust-version is at least every dependency's declared
     rust-version (cargo metadata, every feature, every platform);
  2. clippy::incompatible_msrv with every feature: no std API newer than it;
  3. `cargo package` of each published crate, each built alone from its
     .crate file against the others' (cargo's local registry overlay);
  4. `cargo +<rust-version> check`, every crate and feature, when that
     toolchain is installed (otherwise a line says it was not run).
  The working tree may be dirty (packaging checks the files, not git).";

/// Runs the checks; the first failure stops the task.
pub fn package() -> Result<(), String> {
    let metadata = capture(
        "cargo",
        &["metadata", "--format-version", "1", "--all-features"],
    )?;
    let metadata = json::Json::parse(&metadata).map_err(|e| format!("cargo metadata: {e}"))?;
    let workspace = Workspace::read(&metadata)?;
    let declared = workspace.check_rust_versions()?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-A",
            "clippy::all",
            "-D",
            "clippy::incompatible_msrv",
        ],
    )?;
    // `--workspace` would take the `publish = false` crates too, and fail on
    // their path-only dependencies; name the published ones instead.
    // `--allow-dirty`: what is checked is what would be packaged from this
    // tree; `cargo publish` itself still refuses a dirty one.
    let mut args = vec!["package", "--allow-dirty"];
    for name in &workspace.published {
        args.extend(["-p", name.as_str()]);
    }
    // Each verified crate builds its dependencies with its own features, a
    // dozen builds nothing else reuses: they go to a target directory of
    // their own, without debug info, removed once they passed, so the disk
    // they take is never held while the tests build.
    forget_unpacked_packages(&workspace.published)?;
    let verify_dir = workspace.target_directory.join("package-verify");
    let verify_dir_text = verify_dir.to_string_lossy().into_owned();
    run_with_env(
        &[
            ("CARGO_TARGET_DIR", verify_dir_text.as_str()),
            ("CARGO_PROFILE_DEV_DEBUG", "0"),
            ("CARGO_INCREMENTAL", "0"),
        ],
        "cargo",
        &args,
    )?;
    std::fs::remove_dir_all(&verify_dir)
        .map_err(|e| format!("removing {}: {e}", verify_dir.display()))?;
    check_with_toolchain(&declared)
}

/// Removes what an earlier verification unpacked of our own crates.
///
/// Verification serves the freshly packaged crates from a local registry,
/// and cargo unpacks them under `$CARGO_HOME/registry/src/<that
/// registry>/<name>-<version>`, where it reuses any directory already there:
/// a second run from the same target directory compiled the first run's
/// sources against the second run's manifests (a feature without its
/// module). Only registries other than crates.io are touched.
fn forget_unpacked_packages(published: &[String]) -> Result<(), String> {
    let cargo_home = match std::env::var_os("CARGO_HOME") {
        Some(home) => PathBuf::from(home),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".cargo"),
            None => return Ok(()),
        },
    };
    let Ok(registries) = std::fs::read_dir(cargo_home.join("registry/src")) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        if registry
            .file_name()
            .to_string_lossy()
            .starts_with("index.crates.io")
        {
            continue;
        }
        let Ok(unpacked) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for package in unpacked.flatten() {
            let name = package.file_name().to_string_lossy().into_owned();
            if published.iter().any(|ours| is_version_of(&name, ours)) {
                std::fs::remove_dir_all(package.path())
                    .map_err(|e| format!("removing {}: {e}", package.path().display()))?;
            }
        }
    }
    Ok(())
}

/// Whether `dir` is `<crate>-<version>` (`verrou-core-0.1.0` is a version
/// of `verrou-core`, not of `verrou`).
fn is_version_of(dir: &str, krate: &str) -> bool {
    dir.strip_prefix(krate)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|version| version.starts_with(|c: char| c.is_ascii_digit()))
}

/// `cargo check` of every crate with the toolchain of the declared
/// `rust-version` (any patch release of it), when rustup has one.
fn check_with_toolchain(declared: &str) -> Result<(), String> {
    let Some(toolchain) = installed_toolchain(declared)? else {
        eprintln!(
            "not checked with Rust {declared}: that toolchain is not installed \
             (`rustup toolchain install {declared} --profile minimal` adds it)"
        );
        return Ok(());
    };
    run(
        "cargo",
        &[
            &format!("+{toolchain}"),
            "check",
            "--workspace",
            "--all-targets",
            "--all-features",
        ],
    )
}

/// The name of an installed toolchain of the declared minor version, no
/// older than its patch (`1.94.1-x86_64-unknown-linux-gnu` for `1.94`).
fn installed_toolchain(declared: &str) -> Result<Option<String>, String> {
    let declared = parse_version(declared)?;
    // No rustup (a distribution's Rust): nothing else is installed either.
    let Ok(list) = Command::new("rustup").args(["toolchain", "list"]).output() else {
        return Ok(None);
    };
    Ok(matching_toolchain(
        &String::from_utf8_lossy(&list.stdout),
        declared,
    ))
}

/// The first toolchain in `rustup toolchain list` output that is
/// `declared` or a later patch release of the same minor version.
fn matching_toolchain(list: &str, (major, minor, patch): (u32, u32, u32)) -> Option<String> {
    list.lines()
        .filter_map(|line| line.split_whitespace().next())
        .find(|name| {
            let version = name.split('-').next().unwrap_or_default();
            parse_version(version).is_ok_and(|(a, b, c)| (a, b) == (major, minor) && c >= patch)
        })
        .map(str::to_owned)
}

/// What the checks need from `cargo metadata`.
struct Workspace {
    /// (name, rust-version) of every member.
    members: Vec<(String, Option<String>)>,
    /// The members that are published (no `publish = false`).
    published: Vec<String>,
    /// (name, version, rust-version) of every dependency that declares one.
    dependencies: Vec<(String, String, String)>,
    /// Where cargo builds (`target/` unless configured otherwise).
    target_directory: PathBuf,
}

impl Workspace {
    fn read(metadata: &json::Json) -> Result<Self, String> {
        let members: Vec<&str> = metadata
            .get("workspace_members")
            .map(json::Json::items)
            .unwrap_or_default()
            .iter()
            .filter_map(json::Json::as_str)
            .collect();
        let packages = metadata
            .get("packages")
            .map(json::Json::items)
            .ok_or("cargo metadata: no `packages`")?;
        let target_directory = metadata
            .get("target_directory")
            .and_then(json::Json::as_str)
            .ok_or("cargo metadata: no `target_directory`")?
            .into();
        let mut workspace = Workspace {
            members: Vec::new(),
            published: Vec::new(),
            dependencies: Vec::new(),
            target_directory,
        };
        for package in packages {
            let text = |key| package.get(key).and_then(json::Json::as_str);
            let name = text("name").ok_or("cargo metadata: a package without a name")?;
            let rust_version = text("rust_version").map(str::to_owned);
            if text("id").is_some_and(|id| members.contains(&id)) {
                // `publish = false` is an empty list; null means crates.io.
                let unpublished =
                    matches!(package.get("publish"), Some(json::Json::Array(to)) if to.is_empty());
                if !unpublished {
                    workspace.published.push(name.to_owned());
                }
                workspace.members.push((name.to_owned(), rust_version));
            } else if let Some(rust_version) = rust_version {
                let version = text("version").unwrap_or("?").to_owned();
                workspace
                    .dependencies
                    .push((name.to_owned(), version, rust_version));
            }
        }
        if workspace.published.is_empty() {
            // `cargo package` without `-p` would package whatever is in the
            // current directory instead.
            return Err("cargo metadata: no published workspace member".to_owned());
        }
        Ok(workspace)
    }

    /// Every member declares the same `rust-version` (the workspace's), and
    /// no dependency declares a newer one; returns that `rust-version`.
    fn check_rust_versions(&self) -> Result<String, String> {
        let mut declared: Option<(&str, &str)> = None;
        for (name, rust_version) in &self.members {
            let rust_version = rust_version.as_deref().ok_or_else(|| {
                format!("{name} declares no rust-version (add `rust-version.workspace = true`)")
            })?;
            match declared {
                None => declared = Some((name, rust_version)),
                Some((first, theirs)) if theirs != rust_version => {
                    return Err(format!(
                        "{name} declares rust-version {rust_version} but {first} {theirs}: \
                         every crate inherits the workspace's"
                    ));
                }
                Some(_) => {}
            }
        }
        let (_, declared) = declared.ok_or("cargo metadata: no workspace members")?;
        let ours = parse_version(declared)?;
        let mut newer = Vec::new();
        for (name, version, theirs) in &self.dependencies {
            if parse_version(theirs)? > ours {
                newer.push(format!("{name} {version} (rust-version {theirs})"));
            }
        }
        if newer.is_empty() {
            eprintln!(
                "rust-version {declared}: no older than any of {} dependencies' declared one",
                self.dependencies.len()
            );
            Ok(declared.to_owned())
        } else {
            Err(format!(
                "the workspace declares rust-version {declared}, but these dependencies \
                 need a newer Rust: {}",
                newer.join(", ")
            ))
        }
    }
}

/// `1.85` or `1.85.0` as comparable numbers (a missing patch is 0).
fn parse_version(text: &str) -> Result<(u32, u32, u32), String> {
    let bad = || format!("not a rust-version: {text:?}");
    let mut parts = text.split('.').map(|part| part.parse::<u32>());
    let major = parts.next().ok_or_else(bad)?.map_err(|_| bad())?;
    let minor = parts.next().unwrap_or(Ok(0)).map_err(|_| bad())?;
    let patch = parts.next().unwrap_or(Ok(0)).map_err(|_| bad())?;
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok((major, minor, patch))
}

/// Runs a command and returns its standard output (its errors go to ours).
fn capture(program: &str, args: &[&str]) -> Result<String, String> {
    eprintln!("+ {program} {}", args.join(" "));
    let output = Command::new(program)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("could not start {program}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            output.status
        ));
    }
    String::from_utf8(output.stdout).map_err(|_| format!("{program} printed non-UTF-8"))
}

/// Just enough JSON to read `cargo metadata`: xtask has no dependencies, and
/// serde_json would be its first (see the crate doc).
mod json {
    /// A parsed JSON value.
    pub enum Json {
        /// A number, `true`, `false` or `null`: nothing here reads them.
        Other,
        String(String),
        Array(Vec<Json>),
        Object(Vec<(String, Json)>),
    }

    impl Json {
        /// Parses one JSON document.
        pub fn parse(text: &str) -> Result<Json, String> {
            let mut parser = Parser {
                bytes: text.as_bytes(),
                at: 0,
            };
            let value = parser.value()?;
            parser.space();
            if parser.at == parser.bytes.len() {
                Ok(value)
            } else {
                Err(parser.error("text after the value"))
            }
        }

        /// The value of `key`, when this is an object that has it.
        pub fn get(&self, key: &str) -> Option<&Json> {
            match self {
                Json::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }

        /// The string, when this is one.
        pub fn as_str(&self) -> Option<&str> {
            match self {
                Json::String(s) => Some(s),
                _ => None,
            }
        }

        /// The items of an array; nothing for any other value.
        pub fn items(&self) -> &[Json] {
            match self {
                Json::Array(items) => items,
                _ => &[],
            }
        }
    }

    struct Parser<'a> {
        bytes: &'a [u8],
        at: usize,
    }

    impl Parser<'_> {
        fn error(&self, what: &str) -> String {
            format!("bad JSON at byte {}: {what}", self.at)
        }

        fn space(&mut self) {
            while self.bytes.get(self.at).is_some_and(u8::is_ascii_whitespace) {
                self.at += 1;
            }
        }

        fn next(&mut self) -> Result<u8, String> {
            let byte = *self
                .bytes
                .get(self.at)
                .ok_or_else(|| self.error("unexpected end"))?;
            self.at += 1;
            Ok(byte)
        }

        fn expect(&mut self, word: &str) -> Result<(), String> {
            if self.bytes[self.at..].starts_with(word.as_bytes()) {
                self.at += word.len();
                Ok(())
            } else {
                Err(self.error(&format!("expected {word}")))
            }
        }

        fn value(&mut self) -> Result<Json, String> {
            self.space();
            match self.bytes.get(self.at) {
                Some(b'{') => self.object(),
                Some(b'[') => self.array(),
                Some(b'"') => self.string().map(Json::String),
                Some(b't') => self.expect("true").map(|()| Json::Other),
                Some(b'f') => self.expect("false").map(|()| Json::Other),
                Some(b'n') => self.expect("null").map(|()| Json::Other),
                Some(b'-' | b'0'..=b'9') => {
                    while self.bytes.get(self.at).is_some_and(|b| {
                        matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                    }) {
                        self.at += 1;
                    }
                    Ok(Json::Other)
                }
                _ => Err(self.error("expected a value")),
            }
        }

        fn array(&mut self) -> Result<Json, String> {
            self.expect("[")?;
            let mut items = Vec::new();
            self.space();
            if self.bytes.get(self.at) == Some(&b']') {
                self.at += 1;
                return Ok(Json::Array(items));
            }
            loop {
                items.push(self.value()?);
                self.space();
                match self.next()? {
                    b',' => {}
                    b']' => return Ok(Json::Array(items)),
                    _ => return Err(self.error("expected , or ]")),
                }
            }
        }

        fn object(&mut self) -> Result<Json, String> {
            self.expect("{")?;
            let mut fields = Vec::new();
            self.space();
            if self.bytes.get(self.at) == Some(&b'}') {
                self.at += 1;
                return Ok(Json::Object(fields));
            }
            loop {
                self.space();
                let key = self.string()?;
                self.space();
                self.expect(":")?;
                fields.push((key, self.value()?));
                self.space();
                match self.next()? {
                    b',' => {}
                    b'}' => return Ok(Json::Object(fields)),
                    _ => return Err(self.error("expected , or }")),
                }
            }
        }

        fn string(&mut self) -> Result<String, String> {
            self.expect("\"")?;
            let mut bytes = Vec::new();
            loop {
                match self.next()? {
                    b'"' => break,
                    b'\\' => match self.next()? {
                        b'n' => bytes.push(b'\n'),
                        b't' => bytes.push(b'\t'),
                        b'r' => bytes.push(b'\r'),
                        b'b' => bytes.push(0x08),
                        b'f' => bytes.push(0x0c),
                        b'u' => {
                            let mut units = vec![self.hex4()?];
                            // A surrogate pair is two escapes in a row.
                            if (0xd800..0xdc00).contains(&units[0]) {
                                self.expect("\\u")?;
                                units.push(self.hex4()?);
                            }
                            for c in char::decode_utf16(units) {
                                let c = c.map_err(|_| self.error("bad \\u escape"))?;
                                bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                            }
                        }
                        other => bytes.push(other), // `"`, `\` and `/`
                    },
                    byte => bytes.push(byte),
                }
            }
            String::from_utf8(bytes).map_err(|_| self.error("string is not UTF-8"))
        }

        fn hex4(&mut self) -> Result<u16, String> {
            let digits = self
                .bytes
                .get(self.at..self.at + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u16::from_str_radix(d, 16).ok())
                .ok_or_else(|| self.error("bad \\u escape"))?;
            self.at += 4;
            Ok(digits)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::Json;

        #[test]
        fn reads_what_cargo_metadata_prints() {
            let doc = r#" {"packages": [{"name": "a\u00e9\"\\", "rust_version": null,
                "n": -1.5e3, "ok": true, "no": false, "empty": {}, "list": []}],
                "pair": "\ud83d\ude00"} "#;
            let json = Json::parse(doc).expect("valid JSON");
            let package = &json.get("packages").expect("packages").items()[0];
            assert_eq!(package.get("name").and_then(Json::as_str), Some("aé\"\\"));
            assert!(matches!(package.get("rust_version"), Some(Json::Other)));
            assert_eq!(package.get("ok").and_then(Json::as_str), None);
            assert_eq!(json.get("pair").and_then(Json::as_str), Some("😀"));
        }

        #[test]
        fn refuses_broken_documents() {
            for doc in ["", "{", "[1,]", r#"{"a" 1}"#, r#""\u12""#, "[] x"] {
                assert!(Json::parse(doc).is_err(), "{doc:?} parsed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::json::Json;
    use super::{Workspace, matching_toolchain, parse_version};

    fn workspace(members: &[(&str, Option<&str>)], deps: &[(&str, &str)]) -> Workspace {
        Workspace {
            members: members
                .iter()
                .map(|(n, v)| (n.to_string(), v.map(str::to_owned)))
                .collect(),
            published: Vec::new(),
            dependencies: deps
                .iter()
                .map(|(n, v)| (n.to_string(), "1.0.0".to_owned(), v.to_string()))
                .collect(),
            target_directory: "target".into(),
        }
    }

    #[test]
    fn reads_members_published_ones_and_dependencies() {
        let metadata = r#"{"workspace_members": ["a-id", "t-id"], "target_directory": "/w/target", "packages": [
            {"name": "a", "id": "a-id", "version": "0.1.0", "rust_version": "1.94", "publish": null},
            {"name": "t", "id": "t-id", "version": "0.1.0", "rust_version": "1.94", "publish": []},
            {"name": "tokio", "id": "tokio-id", "version": "1.0.0", "rust_version": "1.70", "publish": null},
            {"name": "old", "id": "old-id", "version": "1.0.0", "rust_version": null, "publish": null}
        ]}"#;
        let ws = Workspace::read(&Json::parse(metadata).expect("valid JSON")).expect("read");
        assert_eq!(ws.published, ["a"]);
        assert_eq!(ws.members.len(), 2);
        let deps: Vec<&str> = ws.dependencies.iter().map(|d| d.0.as_str()).collect();
        assert_eq!(deps, ["tokio"]);
        assert_eq!(ws.target_directory, std::path::Path::new("/w/target"));
    }

    #[test]
    fn unpacked_directories_match_their_crate_only() {
        use super::is_version_of;
        assert!(is_version_of("verrou-core-0.1.0", "verrou-core"));
        assert!(is_version_of("verrou-0.1.0", "verrou"));
        assert!(!is_version_of("verrou-core-0.1.0", "verrou"));
        assert!(!is_version_of("verrou-corex-0.1.0", "verrou-core"));
        assert!(!is_version_of("verrou-core", "verrou-core"));
    }

    #[test]
    fn finds_a_toolchain_of_the_declared_minor_version() {
        let list = "stable-x86_64-unknown-linux-gnu (active, default)\n\
                    nightly-x86_64-unknown-linux-gnu\n\
                    1.95.0-x86_64-unknown-linux-gnu\n\
                    1.94.1-x86_64-unknown-linux-gnu\n";
        let found = |v| matching_toolchain(list, parse_version(v).unwrap());
        assert_eq!(
            found("1.94").as_deref(),
            Some("1.94.1-x86_64-unknown-linux-gnu")
        );
        assert_eq!(
            found("1.94.1").as_deref(),
            Some("1.94.1-x86_64-unknown-linux-gnu")
        );
        assert_eq!(found("1.94.2"), None);
        assert_eq!(found("1.88"), None);
    }

    #[test]
    fn versions_compare_as_numbers() {
        assert_eq!(parse_version("1.85"), Ok((1, 85, 0)));
        assert!(parse_version("1.100").unwrap() > parse_version("1.94.1").unwrap());
        assert!(parse_version("1.x").is_err());
        assert!(parse_version("1.2.3.4").is_err());
    }

    #[test]
    fn a_dependency_newer_than_the_workspace_is_named() {
        let ws = workspace(
            &[("a", Some("1.85"))],
            &[("old", "1.70"), ("sqlx", "1.94.0")],
        );
        let error = ws.check_rust_versions().unwrap_err();
        assert!(
            error.contains("sqlx 1.0.0 (rust-version 1.94.0)"),
            "{error}"
        );
        assert!(!error.contains("old"), "{error}");
        let ws = workspace(&[("a", Some("1.94"))], &[("sqlx", "1.94.0")]);
        assert_eq!(ws.check_rust_versions(), Ok("1.94".to_owned()));
    }

    #[test]
    fn every_member_declares_the_same_rust_version() {
        let ws = workspace(&[("a", Some("1.94")), ("b", Some("1.89"))], &[]);
        assert!(ws.check_rust_versions().unwrap_err().contains("b declares"));
        let ws = workspace(&[("a", Some("1.94")), ("b", None)], &[]);
        assert!(
            ws.check_rust_versions()
                .unwrap_err()
                .contains("b declares no")
        );
    }
}
