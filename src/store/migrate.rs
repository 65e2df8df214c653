//! Schema migrations: the numbered SQL files of `migrations/`, embedded at build
//! time. Pending ones are applied in one transaction and `PRAGMA user_version`
//! records how many have run. A database that has seen more migrations than this
//! binary knows was written by a newer fimvt and is refused rather than misread.

use rusqlite::Connection;

use super::StoreError;

/// Every migration, in order. Append only: never edit a shipped one.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init.sql", include_str!("../../migrations/0001_init.sql")),
    ("0002_virustotal.sql", include_str!("../../migrations/0002_virustotal.sql")),
    ("0003_daemon_state.sql", include_str!("../../migrations/0003_daemon_state.sql")),
    ("0004_vt_queue_without_md5_sha1.sql", include_str!("../../migrations/0004_vt_queue_without_md5_sha1.sql")),
];

/// The schema version this binary writes.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current < 0 {
        return Err(StoreError::NotOurs { user_version: current });
    }
    if current > latest() {
        return Err(StoreError::TooNew { found: current, supported: latest() });
    }
    if current == latest() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for (name, sql) in &MIGRATIONS[current as usize..] {
        tx.execute_batch(sql).map_err(|source| StoreError::Migration { name, source })?;
    }
    tx.pragma_update(None, "user_version", latest())?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_embedded_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        names.sort();
        let embedded: Vec<&str> = MIGRATIONS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, embedded);
        for (i, n) in embedded.iter().enumerate() {
            assert!(n.starts_with(&format!("{:04}_", i + 1)), "{n} is out of sequence");
            let sql = MIGRATIONS[i].1;
            assert!(sql.trim_start().starts_with("-- Why:"), "{n} must open with a '-- Why:' comment");
        }
    }
}
