//! Pictures inside `.zip` archives, read with the `zip` crate (Deflate and Stored entries), with
//! limits against zip bombs checked before anything is inflated: the archive's size, its
//! declared entry count, each entry's declared size, the total it expands to, and each entry's
//! real size while it inflates (a header may lie). Every problem names the archive and entry.

use std::io::{Cursor, Read};

use zip::ZipArchive;

use crate::error::{GanError, Result};
use crate::preprocess::MAX_FILE_BYTES;

/// Largest archive read: 1 GiB, which must fit in the page's memory next to the model.
pub const MAX_ARCHIVE_BYTES: u64 = 1 << 30;
/// Most entries an archive may declare. 100,000 pictures is ten times the 10,000 the page is
/// sized for; the limit keeps a central directory of millions of tiny entries (each costing
/// memory when listed) from being parsed at all.
pub const MAX_ENTRIES: u64 = 100_000;
/// Most bytes all entries of one archive may inflate to: 4 GiB. The overlapping-entry bombs
/// (Fifield 2019, "A better zip bomb") reach terabytes from a few megabytes; this stops them
/// after a bounded amount of work.
pub const MAX_EXPANDED_BYTES: u64 = 4 << 30;

/// Whether a file name looks like a zip archive.
pub fn is_zip(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".zip")
}

/// Refuses an archive by its length, before it is read.
pub fn check_size(name: &str, len: u64) -> Result<()> {
    if len > MAX_ARCHIVE_BYTES {
        return Err(GanError::BadImage {
            name: name.into(),
            problem: format!(
                "the archive is {} MB; archives up to {} MB are read (unpack it and add the folder)",
                len >> 20,
                MAX_ARCHIVE_BYTES >> 20
            ),
        });
    }
    Ok(())
}

/// The entry count the end-of-central-directory record declares (APPNOTE.TXT 4.3.16, and
/// 4.3.14-15 for ZIP64), read before the crate lists the entries; `None` when there is no
/// such record (the crate then reports the archive as damaged).
fn declared_entries(bytes: &[u8]) -> Option<u64> {
    const EOCD: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
    const LOCATOR: [u8; 4] = [0x50, 0x4b, 0x06, 0x07];
    const EOCD64: [u8; 4] = [0x50, 0x4b, 0x06, 0x06];
    let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
    // The record is 22 bytes plus a comment of up to 65,535 bytes, at the end of the file.
    let earliest = bytes.len().saturating_sub(22 + 65_535);
    let latest = bytes.len().checked_sub(22)?; // shorter than the record: not an archive
    let eocd = (earliest..=latest)
        .rev()
        .find(|&i| bytes[i..i + 4] == EOCD)?;
    let count = u16_at(eocd + 10)?;
    if count != u16::MAX {
        return Some(count.into());
    }
    // ZIP64: a 20-byte locator before the record points at the ZIP64 record.
    let locator = eocd.checked_sub(20)?;
    if bytes.get(locator..locator + 4)? != LOCATOR {
        return Some(count.into());
    }
    let record = usize::try_from(u64_at(locator + 8)?).ok()?;
    if bytes.get(record..record + 4)? != EOCD64 {
        return None;
    }
    u64_at(record + 32)
}

/// An open archive whose entries are read one at a time.
pub struct Archive {
    name: String,
    zip: ZipArchive<Cursor<Vec<u8>>>,
    expanded: u64,
    /// Set once the archive passed `MAX_EXPANDED_BYTES`: the rest is skipped without a message
    /// per entry.
    exhausted: bool,
}

/// One picture file from an archive.
pub struct Entry {
    /// "archive.zip/folder/picture.png".
    pub name: String,
    /// The entry's bytes, at most `MAX_FILE_BYTES`.
    pub bytes: Vec<u8>,
}

impl Archive {
    /// Opens the archive `name` from its bytes, after checking its size and entry count.
    pub fn open(name: &str, bytes: Vec<u8>) -> Result<Archive> {
        check_size(name, bytes.len() as u64)?;
        let bad = |problem: String| GanError::BadImage {
            name: name.into(),
            problem,
        };
        if let Some(n) = declared_entries(&bytes).filter(|&n| n > MAX_ENTRIES) {
            return Err(bad(format!(
                "the archive declares {n} entries; at most {MAX_ENTRIES} are read"
            )));
        }
        let zip = ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| bad(format!("not a readable zip archive ({e})")))?;
        Ok(Archive {
            name: name.into(),
            zip,
            expanded: 0,
            exhausted: false,
        })
    }

    /// Entries in the archive, folders included.
    pub fn len(&self) -> usize {
        self.zip.len()
    }

    /// Whether the archive has no entries.
    pub fn is_empty(&self) -> bool {
        self.zip.len() == 0
    }

    /// The `index`-th entry: `Ok(None)` for folders and for the metadata macOS adds
    /// (`__MACOSX/`, `._name`, `.DS_Store`), which are not pictures anyone chose; an error naming
    /// the entry when it cannot be used.
    pub fn entry(&mut self, index: usize) -> Result<Option<Entry>> {
        if self.exhausted {
            return Ok(None);
        }
        let archive = self.name.clone();
        let file = self
            .zip
            .by_index_raw(index)
            .map_err(|e| GanError::BadImage {
                name: format!("{archive} entry {index}"),
                problem: format!("damaged archive entry ({e})"),
            })?;
        let inner = file.name().to_string();
        let leaf = inner.rsplit('/').next().unwrap_or_default();
        if file.is_dir()
            || inner.starts_with("__MACOSX/")
            || leaf.starts_with("._")
            || leaf == ".DS_Store"
        {
            return Ok(None);
        }
        let name = format!("{archive}/{inner}");
        let bad = |problem: String| GanError::BadImage {
            name: name.clone(),
            problem,
        };
        if is_zip(&inner) {
            return Err(bad("an archive inside an archive is not opened".into()));
        }
        if file.encrypted() {
            return Err(bad("the entry is encrypted".into()));
        }
        let declared = file.size();
        if declared > MAX_FILE_BYTES {
            return Err(bad(format!(
                "it unpacks to {} MB; pictures up to {} MB are accepted",
                declared >> 20,
                MAX_FILE_BYTES >> 20
            )));
        }
        if self.expanded + declared > MAX_EXPANDED_BYTES {
            self.exhausted = true;
            return Err(bad(format!(
                "the archive unpacks to more than {} GB: it looks like a zip bomb, so the rest is skipped",
                MAX_EXPANDED_BYTES >> 30
            )));
        }
        let method = file.compression();
        drop(file);
        let file = self.zip.by_index(index).map_err(|e| {
            bad(format!(
                "compressed with {method}, which is not read here (use Deflate, the usual method) ({e})"
            ))
        })?;
        // Read one byte past the declared size, so an entry that inflates to more than its
        // header says is caught without inflating the rest.
        let mut bytes = Vec::with_capacity(declared as usize);
        file.take(declared + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("damaged archive entry ({e})")))?;
        self.expanded += bytes.len() as u64;
        if bytes.len() as u64 > declared {
            return Err(bad(
                "the entry holds more than its header declares: it looks like a zip bomb".into(),
            ));
        }
        Ok(Some(Entry { name, bytes }))
    }
}
