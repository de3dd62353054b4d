use super::*;

fn mark(reason: &str) -> Mark {
    Mark {
        reason: reason.to_string(),
        by: "test".to_string(),
        at: 1_700_000_000,
        forced: false,
    }
}

fn sample() -> MaintenanceState {
    let mut s = MaintenanceState::default();
    s.drain(Some("web"), mark("kernel upgrade"));
    s.drain(Some("dns"), mark("näive ünïcode \"quotes\"\nnewline"));
    s
}

fn write(dir: &Path, bytes: &[u8]) {
    fs::write(dir.join(STATE_FILE), bytes).unwrap();
}

fn open_err(dir: &Path) -> String {
    let (_, loaded) = StateStore::open(dir);
    let err = loaded.expect_err("a bad file must be reported");
    assert!(matches!(
        err,
        LoadError::Parse { .. } | LoadError::Read { .. }
    ));
    err.to_string()
}

#[test]
fn round_trip_and_file_format() {
    let dir = tempfile::tempdir().unwrap();
    let (store, loaded) = StateStore::open(dir.path());
    assert_eq!(loaded.unwrap(), MaintenanceState::default());
    let mut s = sample();
    s.drain(None, mark("rack move"));
    store.save(&s).unwrap();
    let (_, again) = StateStore::open(dir.path());
    assert_eq!(again.unwrap(), s);
    // The on-disk names are a compatibility promise; a rename must be a deliberate version bump.
    let text = fs::read_to_string(dir.path().join(STATE_FILE)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["all"]["reason"], "rack move");
    assert_eq!(v["vips"]["web"]["by"], "test");
    assert_eq!(v["vips"]["web"]["at"], 1_700_000_000u64);
    assert!(!dir.path().join(TEMP_FILE).exists());
}

#[test]
fn missing_dir_is_empty_and_save_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("a/b");
    let (store, loaded) = StateStore::open(&sub);
    assert_eq!(loaded.unwrap(), MaintenanceState::default());
    store.save(&sample()).unwrap();
    assert_eq!(StateStore::open(&sub).1.unwrap(), sample());
}

#[test]
fn corrupt_json_is_reported_and_kept_aside() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), b"{\"version\": 1, \"vips\": {\"web\": ");
    let err = open_err(dir.path());
    assert!(err.contains("not valid JSON"), "{err}");
    assert!(err.contains("state.json.bad"), "{err}");
    assert!(dir.path().join(BAD_FILE).exists());
    // The next save writes a fresh file and leaves the evidence alone.
    let (store, _) = StateStore::open(dir.path());
    store.save(&sample()).unwrap();
    assert_eq!(StateStore::open(dir.path()).1.unwrap(), sample());
    assert!(fs::read(dir.path().join(BAD_FILE))
        .unwrap()
        .starts_with(b"{\"version\": 1"));
}

#[test]
fn every_truncation_of_a_valid_file_is_reported_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StateStore::open(dir.path());
    let mut s = sample();
    s.drain(None, mark("all"));
    store.save(&s).unwrap();
    let full = fs::read(dir.path().join(STATE_FILE)).unwrap();
    // Cutting just the trailing newline (and closing brace's whitespace) still leaves valid JSON.
    let whole = full.trim_ascii_end().len();
    for cut in 0..whole {
        write(dir.path(), &full[..cut]);
        let (_, loaded) = StateStore::open(dir.path());
        assert!(loaded.is_err(), "prefix of {cut} bytes was accepted");
    }
}

#[test]
fn wrong_or_missing_version_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    for (text, want) in [
        (
            r#"{"version": 2, "vips": {}}"#,
            "version 2 is not supported",
        ),
        (r#"{"vips": {}}"#, "no \"version\" field"),
        (r#"{"version": "1"}"#, "not a non-negative integer"),
        (r#"{"version": -1}"#, "not a non-negative integer"),
        (r#"[1, 2]"#, "no \"version\" field"),
        (
            r#"{"version": 1, "vips": {"web": {"reason": 5}}}"#,
            "unexpected content",
        ),
        ("", "file is empty"),
        ("\n  \n", "file is empty"),
    ] {
        write(dir.path(), text.as_bytes());
        let err = open_err(dir.path());
        assert!(err.contains(want), "{text:?}: {err}");
        assert!(err.contains("running with no maintenance"), "{err}");
    }
}

#[test]
fn binary_garbage_and_oversized_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[0xff, 0x00, 0xfe, b'{']);
    assert!(open_err(dir.path()).contains("not valid JSON"));
    let mut big = br#"{"version": 1, "pad": ""#.to_vec();
    big.resize(MAX_FILE_BYTES as usize + 10, b'x');
    write(dir.path(), &big);
    assert!(open_err(dir.path()).contains("larger than"));
}

#[test]
fn directory_at_the_path_is_reported_and_save_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join(STATE_FILE)).unwrap();
    let (store, loaded) = StateStore::open(dir.path());
    let err = loaded.unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Read {
                source: ReadError::NotRegularFile,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("not a regular file"), "{err}");
    // rename(2) cannot replace a directory with a file: the save reports it.
    let err = store.save(&sample()).unwrap_err();
    assert!(
        matches!(
            err,
            SaveError::Write {
                step: WriteStep::Rename,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("cannot rename"), "{err}");
    assert!(!dir.path().join(TEMP_FILE).exists());
}

#[test]
fn unusable_state_dir_is_a_save_error() {
    // A path below a regular file: ENOTDIR for everyone, root included (permission bits would not
    // stop root). This proves the error path and its message, not a read-only mount.
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("file"), b"").unwrap();
    let (store, loaded) = StateStore::open(&dir.path().join("file/sub"));
    assert!(loaded.map_or(true, |s| s == MaintenanceState::default()));
    let err = store.save(&sample()).unwrap_err();
    assert!(matches!(err, SaveError::CreateDir { .. }), "{err}");
    assert!(err.to_string().contains("cannot create state dir"), "{err}");
}

/// `chattr +i` on the directory: nobody, root included, may create or rename entries in it. This
/// is the closest honest stand-in for a read-only state dir that a test can build without
/// mounting. Skipped (with a message) where chattr or the filesystem does not support it.
#[test]
fn immutable_state_dir_keeps_old_file_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StateStore::open(dir.path());
    store.save(&sample()).unwrap();
    let before = fs::read(dir.path().join(STATE_FILE)).unwrap();
    let set = std::process::Command::new("chattr")
        .arg("+i")
        .arg(dir.path())
        .status();
    if !matches!(set, Ok(s) if s.success()) {
        eprintln!("skipped: chattr +i not available here ({set:?})");
        return;
    }
    struct Unset<'a>(&'a Path);
    impl Drop for Unset<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(self.0)
                .status();
        }
    }
    let _unset = Unset(dir.path());
    let err = store
        .save(&MaintenanceState::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot create"), "{err}");
    assert!(err.contains("Operation not permitted"), "{err}");
    assert_eq!(fs::read(dir.path().join(STATE_FILE)).unwrap(), before);
}

#[test]
fn failure_before_rename_leaves_old_file_intact() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StateStore::open(dir.path());
    store.save(&sample()).unwrap();
    let before = fs::read(dir.path().join(STATE_FILE)).unwrap();
    for (step, want) in [
        (Step::TempWritten, "cannot write"),
        (Step::TempSynced, "cannot fsync"),
    ] {
        let err = store
            .save_with(&MaintenanceState::default(), &mut |s| {
                if s == step {
                    Err(io::Error::from(io::ErrorKind::StorageFull))
                } else {
                    Ok(())
                }
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{step:?}: {err}");
        assert_eq!(fs::read(dir.path().join(STATE_FILE)).unwrap(), before);
        assert!(
            !dir.path().join(TEMP_FILE).exists(),
            "temp file left behind"
        );
        assert_eq!(StateStore::open(dir.path()).1.unwrap(), sample());
    }
}

#[test]
fn failure_after_rename_is_still_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StateStore::open(dir.path());
    let err = store
        .save_with(&sample(), &mut |s| {
            if s == Step::Renamed {
                Err(io::Error::other("injected"))
            } else {
                Ok(())
            }
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("injected"), "{err}");
}

#[test]
fn drain_all_covers_vips_configured_later() {
    let mut s = MaintenanceState::default();
    s.drain(None, mark("node drained"));
    assert_eq!(
        s.mark_for("added-after-the-drain").unwrap().reason,
        "node drained"
    );
    s.drain(Some("web"), mark("web specific"));
    assert_eq!(s.mark_for("web").unwrap().reason, "web specific");
    assert!(s.undrain(None, &["web"]));
    assert!(s.is_empty());
    assert!(!s.undrain(None, &["web"]));
}

#[test]
fn undrain_one_vip_of_a_drained_node_keeps_the_others() {
    let mut s = MaintenanceState::default();
    s.drain(None, mark("node drained"));
    s.drain(Some("dns"), mark("dns own"));
    assert!(s.undrain(Some("web"), &["web", "dns", "mail"]));
    assert!(s.all.is_none());
    assert!(s.mark_for("web").is_none());
    assert_eq!(s.mark_for("mail").unwrap().reason, "node drained");
    assert_eq!(s.mark_for("dns").unwrap().reason, "dns own");
    assert!(!s.undrain(Some("web"), &["web", "dns", "mail"]));
}

#[test]
fn stale_lists_unconfigured_vips() {
    let s = sample();
    assert_eq!(s.stale(&["web"]), vec!["dns".to_string()]);
    assert!(s.stale(&["web", "dns"]).is_empty());
}

#[test]
fn apply_commits_in_memory_only_after_a_successful_save() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StateStore::open(dir.path());
    let mut current = MaintenanceState::default();
    assert!(store
        .apply(&mut current, |s| s.drain(Some("web"), mark("x")))
        .unwrap());
    assert_eq!(StateStore::open(dir.path()).1.unwrap(), current);
    // Same drain again: no change, no write.
    let before = fs::metadata(dir.path().join(STATE_FILE))
        .unwrap()
        .modified()
        .unwrap();
    assert!(!store
        .apply(&mut current, |s| s.drain(Some("web"), mark("x")))
        .unwrap());
    let after = fs::metadata(dir.path().join(STATE_FILE))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);

    fs::write(dir.path().join("file"), b"").unwrap();
    let (broken, _) = StateStore::open(&dir.path().join("file/sub"));
    let kept = current.clone();
    let err = broken
        .apply(&mut current, |s| s.drain(None, mark("all")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot create state dir"), "{err}");
    assert_eq!(current, kept);
}
