//! `sqlite-s3 info URL`.

use std::io::Write;

use serde_json::json;
use sqlite_s3::admin::{self, LocalCopy};
use sqlite_s3::{Error, LayoutKind, Result, Session};

use super::ignore_broken_pipe;
use crate::cli::InfoFormat;
use crate::context::Context;

pub async fn run(ctx: &mut Context, url: &str, format: InfoFormat) -> Result<()> {
    let remote = ctx.remote(url)?;
    let local = admin::local_copy(&ctx.options.resolved_cache_dir(), &remote)?;
    // info changes nothing: when the local copy holds unpublished changes,
    // or another process has it, read through a throwaway copy instead.
    let scratch = tempfile::tempdir().map_err(|source| Error::Io {
        operation: "creating a temporary directory in",
        path: std::env::temp_dir(),
        source,
    })?;
    let options = match local {
        LocalCopy::Dirty { .. } | LocalCopy::InUse => ctx.options.clone().cache_dir(scratch.path()),
        _ => ctx.options.clone(),
    }
    .read_only(true);
    let session = Session::open_remote(remote.clone(), &options).await?;
    if session.version().is_none() {
        return Err(Error::DatabaseNotFound { url: url.to_string() });
    }
    let layout = session.layout();
    let info = session.version_info();
    let meta = match layout {
        LayoutKind::Single => remote.head().await?,
        LayoutKind::Versioned => None,
    };
    let conn = session.connection();
    let pragma = |name: &str| -> Result<rusqlite::types::Value> {
        Ok(conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))?)
    };
    let (page_size, page_count, journal_mode) = (pragma("page_size")?, pragma("page_count")?, pragma("journal_mode")?);
    let mut tables = Vec::new();
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for name in names {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let rows: i64 = conn.query_row(&format!("SELECT count(*) FROM {quoted}"), [], |r| r.get(0))?;
        tables.push((name, rows));
    }
    session.close().await?;

    let (local_state, local_path) = match &local {
        LocalCopy::Absent => ("absent", None),
        LocalCopy::Clean { .. } => ("clean", None),
        LocalCopy::Dirty { path } => ("dirty", Some(path.display().to_string())),
        LocalCopy::InUse => ("in use", None),
    };
    let value = json!({
        "url": url,
        "layout": layout.name(),
        "size": meta.as_ref().map(|m| m.size).or_else(|| info.as_ref().map(|v| v.size)),
        "version": info.as_ref().map(|v| v.version),
        "page_size": to_json(page_size),
        "page_count": to_json(page_count),
        "journal_mode": to_json(journal_mode),
        "etag": meta.as_ref().and_then(|m| m.e_tag.clone()),
        "last_modified": meta
            .as_ref()
            .map(|m| m.last_modified.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .or_else(|| info.as_ref().map(|v| crate::output::rfc3339(v.committed_at))),
        "local_copy": local_state,
        "local_changes": local_path,
        "tables": tables.iter().map(|(name, rows)| json!({"name": name, "rows": rows})).collect::<Vec<_>>(),
    });
    let mut out = std::io::stdout().lock();
    let written = match format {
        InfoFormat::Json => serde_json::to_writer_pretty(&mut out, &value)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
        InfoFormat::Text => text(&value, &mut out),
    };
    written.and_then(|()| out.flush()).or_else(ignore_broken_pipe)
}

fn to_json(value: rusqlite::types::Value) -> serde_json::Value {
    match value {
        rusqlite::types::Value::Integer(i) => i.into(),
        rusqlite::types::Value::Text(t) => t.into(),
        rusqlite::types::Value::Real(f) => f.into(),
        _ => serde_json::Value::Null,
    }
}

fn text(v: &serde_json::Value, out: &mut impl Write) -> std::io::Result<()> {
    let show = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    };
    let local = match (&v["local_copy"], &v["local_changes"]) {
        (state, serde_json::Value::String(path)) => format!("{} (unpublished changes in {path})", show(state)),
        (state, _) => show(state),
    };
    let lines = [
        ("database", show(&v["url"])),
        (
            "layout",
            match v["layout"].as_str() {
                Some("versioned") => format!("versioned (version {})", show(&v["version"])),
                _ => "single object (the object is the SQLite file)".to_string(),
            },
        ),
        ("size", format!("{} bytes", show(&v["size"]))),
        ("page size", show(&v["page_size"])),
        ("page count", show(&v["page_count"])),
        ("journal mode", show(&v["journal_mode"])),
        ("remote etag", show(&v["etag"])),
        ("last modified", show(&v["last_modified"])),
        ("local copy", local),
    ];
    for (name, value) in lines {
        writeln!(out, "{:<14} {value}", format!("{name}:"))?;
    }
    let tables = v["tables"].as_array().cloned().unwrap_or_default();
    writeln!(out, "{:<14} {}", "tables:", tables.len())?;
    let width = tables
        .iter()
        .map(|t| show(&t["name"]).chars().count())
        .max()
        .unwrap_or(0);
    for t in &tables {
        writeln!(out, "  {:<width$}  {} rows", show(&t["name"]), t["rows"])?;
    }
    Ok(())
}
