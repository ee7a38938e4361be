//! The word list the sentiment agent scores text with: a CSV file in the layout of
//! ANEW (Bradley & Lang, "Affective Norms for English Words"), which Huginn reads from
//! `data/anew.csv`: per line a word, its number, then the means and standard deviations
//! of valence, arousal and dominance (columns 3, 5 and 7, counting from 1) and more
//! columns that are not read. ANEW itself is released for academic research only and is
//! not under Huginn's licence, so muninn ships no lexicon: the operator names one
//! (`[sentiment] lexicon_path`).
//!
//! A file is read once per path and shared ([`shared`]); it is bounded in size, and a
//! line that is not in that layout is an error naming the line. Blank lines are skipped,
//! and so is a first line whose score columns are not numbers (a header).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

/// The largest lexicon file read (ANEW is 40 KB; the largest published norms, ~14 000
/// words, about 1 MB).
pub const MAX_LEXICON_BYTES: u64 = 16 * 1024 * 1024;

/// The setting an operator changes, named in every message about it.
pub const SETTING: &str = "[sentiment] lexicon_path (env MUNINN_SENTIMENT_LEXICON_PATH)";

/// Why a lexicon file cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the sentiment lexicon {path} ({SETTING}) cannot be used: {why}")]
pub struct LexiconError {
    pub path: String,
    pub why: String,
}

/// Why a lexicon's text cannot be read, naming the line (1-based).
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("line {line}: not CSV ({source})")]
    NotCsv { line: u64, source: csv::Error },
    #[error("line {0}: the word (column 1) is empty")]
    EmptyWord(u64),
    /// A score column (1-based) is missing or not a number; `found` as written.
    #[error(
        "line {line}: column {column} ({found}) is not a number; each line is a word, its number, then the valence, arousal and dominance means each followed by its standard deviation (ANEW's layout)"
    )]
    NotANumber {
        line: u64,
        column: usize,
        found: String,
    },
}

/// Words and their (valence, arousal, dominance) means.
#[derive(Debug, Default)]
pub struct Lexicon {
    words: HashMap<String, [f64; 3]>,
}

/// The score columns (0-based): valence, arousal and dominance means.
const COLUMNS: [usize; 3] = [2, 4, 6];

impl Lexicon {
    pub fn get(&self, word: &str) -> Option<&[f64; 3]> {
        self.words.get(word)
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Reads the CSV text of a lexicon; the error names the line (1-based).
    pub fn parse(text: &str) -> Result<Lexicon, LineError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut words = HashMap::new();
        for (n, record) in reader.records().enumerate() {
            let record = record.map_err(|source| LineError::NotCsv {
                line: source.position().map_or(0, |p| p.line()),
                source,
            })?;
            let line = record.position().map_or(n as u64 + 1, |p| p.line());
            if record.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            let scores: Vec<Option<f64>> = COLUMNS
                .iter()
                .map(|&c| {
                    record
                        .get(c)
                        .and_then(|f| f.trim().parse::<f64>().ok())
                        .filter(|v| v.is_finite())
                })
                .collect();
            if n == 0 && scores.iter().all(Option::is_none) {
                continue;
            }
            let word = record.get(0).map(str::trim).unwrap_or_default();
            if word.is_empty() {
                return Err(LineError::EmptyWord(line));
            }
            let mut vad = [0.0; 3];
            for ((slot, score), column) in vad.iter_mut().zip(&scores).zip(COLUMNS) {
                *slot = score.ok_or_else(|| LineError::NotANumber {
                    line,
                    column: column + 1,
                    found: record
                        .get(column)
                        .map_or("missing".to_string(), |f| format!("{f:?}")),
                })?;
            }
            // Huginn's hash keeps the last line of a word given twice.
            words.insert(word.to_string(), vad);
        }
        Ok(Lexicon { words })
    }

    /// Reads and parses the file at `path`, refusing one larger than [`MAX_LEXICON_BYTES`].
    pub fn load(path: &Path) -> Result<Lexicon, LexiconError> {
        let fail = |why: String| LexiconError {
            path: path.display().to_string(),
            why,
        };
        let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
        let mut bytes = Vec::new();
        file.take(MAX_LEXICON_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(e.to_string()))?;
        if bytes.len() as u64 > MAX_LEXICON_BYTES {
            return Err(fail(format!("it is larger than {MAX_LEXICON_BYTES} bytes")));
        }
        let text = String::from_utf8(bytes).map_err(|_| fail("it is not UTF-8 text".into()))?;
        let lexicon = Lexicon::parse(&text).map_err(|e| fail(e.to_string()))?;
        if lexicon.is_empty() {
            return Err(fail("it holds no word".into()));
        }
        Ok(lexicon)
    }
}

/// Lexicons read so far, by path: each file is parsed once per process.
static LOADED: LazyLock<Mutex<HashMap<PathBuf, Arc<Lexicon>>>> = LazyLock::new(Mutex::default);

/// The lexicon `[sentiment] lexicon_path` names, read on first use and shared; None
/// when the setting is empty.
pub fn shared(
    config: &crate::config::SentimentConfig,
) -> Result<Option<Arc<Lexicon>>, LexiconError> {
    let path = config.lexicon_path.trim();
    if path.is_empty() {
        return Ok(None);
    }
    let path = PathBuf::from(path);
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(l) = loaded.get(&path) {
        return Ok(Some(l.clone()));
    }
    let lexicon = Arc::new(Lexicon::load(&path)?);
    loaded.insert(path, lexicon.clone());
    Ok(Some(lexicon))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_anews_layout_and_names_a_bad_line() {
        let l = Lexicon::parse(
            "Word,No,V,Vsd,A,Asd,D,Dsd,F\n\nhappy,1,8.0,1,6.0,1,7.0,1,10\nsad,2,2,1,3,1,3.5,1\n",
        )
        .unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l.get("happy"), Some(&[8.0, 6.0, 7.0]));
        let e = Lexicon::parse("happy,1,8.0,1,6.0,1,7.0,1\nsad,2,2,1,x,1,3.5,1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("line 2: column 5 (\"x\") is not a number"),
            "{e}"
        );
        let e = Lexicon::parse("happy,1,8.0,1,6.0\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("line 1: column 7 (missing)"), "{e}");
        let e = Lexicon::parse("a,1,1,1,1,1,1,1\n,2,1,1,1,1,1,1\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("line 2: the word"), "{e}");
    }

    #[test]
    fn a_missing_or_oversized_file_is_an_error_naming_the_setting() {
        let e = Lexicon::load(Path::new("/nonexistent/lexicon.csv")).unwrap_err();
        assert!(
            e.to_string().contains("MUNINN_SENTIMENT_LEXICON_PATH"),
            "{e}"
        );
    }
}
