//! The `parse_and_decide` fuzz target on the stable toolchain, bounded, for
//! CI: replays the checked-in corpus and seeds, then a fixed number of
//! inputs from a seeded PRNG, through the fuzzer's own generators and
//! invariants (`fuzz_support`). Not coverage-guided: it guards against
//! regressions on what the fuzzer found; the fuzzer (see the README) explores.
//!
//! Run: `cargo test -p oauth3-policy --test fuzz_replay`. More or other
//! cases: `FUZZ_CASES=1000000 FUZZ_SEED=7 cargo test --release -p oauth3-policy --test fuzz_replay`.
//! A failing generated input is written to the temporary directory; replay
//! it with `cargo fuzz run -s none parse_and_decide <file>` or copy it into
//! the corpus.

mod fuzz_support;

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use fuzz_support::run_one;
use oauth3_policy::{CompileOptions, PermitSpec};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/parse_and_decide");
const SEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/parse_and_decide");
const DICT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/parse_and_decide.dict");

/// Generated cases per run unless `FUZZ_CASES` says otherwise: ~14 s in a
/// debug build on 2 cores.
const DEFAULT_CASES: u64 = 20_000;
const DEFAULT_SEED: u64 = 0x0a17_3f0e_2026_1202;

/// What the fuzzer found (the minimised corpus) and the hand-written seeds.
#[test]
fn every_checked_in_corpus_and_seed_input_passes() {
    let corpus = read_dir(CORPUS);
    let seeds = read_dir(SEEDS);
    assert!(!corpus.is_empty() && !seeds.is_empty(), "the corpus and seed directories must not be empty");
    let files: Vec<_> = corpus.into_iter().chain(seeds).collect();
    let failed = failing(&files);
    assert!(failed.is_empty(), "{} inputs failed (messages above): {failed:#?}", failed.len());
}

/// Random bytes, compiling specs with random request bytes, and mutated
/// seed and corpus entries, in fixed proportions from a fixed seed.
#[test]
fn generated_inputs_pass_for_a_fixed_number_of_cases() {
    let cases = env_u64("FUZZ_CASES").unwrap_or(DEFAULT_CASES);
    let seed = env_u64("FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let entries: Vec<Vec<u8>> = read_dir(SEEDS).into_iter().chain(read_dir(CORPUS)).map(|(_, data)| data).collect();
    // The spec halves of the seeds and corpus that compile, so generated
    // requests meet many real rules (most corpus specs do not parse).
    let mut specs: Vec<&[u8]> = entries.iter().map(|e| e.split(|&b| b == 0).next().unwrap_or_default()).collect();
    specs.sort();
    specs.dedup();
    specs.retain(|spec| compiles(spec));
    assert!(!specs.is_empty(), "no seed or corpus spec compiles");
    let dict = dictionary();
    let mut rng = SplitMix64(seed);

    for case in 0..cases {
        let input = match rng.below(6) {
            // Random bytes: the parser and the `arbitrary` decoding see junk.
            0 => rng.bytes(512),
            // A spec that compiles, NUL, random request bytes.
            1..=3 => {
                let mut input = rng.choose(&specs).to_vec();
                input.push(0);
                input.extend(rng.bytes(512));
                input
            }
            // A seed or corpus entry, mutated (spec, request or both).
            _ => mutate(rng.choose(&entries).clone(), &entries, &dict, &mut rng),
        };
        if panic::catch_unwind(AssertUnwindSafe(|| run_one(&input))).is_err() {
            let file = std::env::temp_dir().join(format!("parse_and_decide-seed{seed}-case{case}"));
            fs::write(&file, &input).expect("write the failing input");
            panic!("case {case} (FUZZ_SEED={seed}) failed (message above); input written to {}", file.display());
        }
    }
}

fn compiles(spec: &[u8]) -> bool {
    let text = String::from_utf8_lossy(spec);
    PermitSpec::from_json(&text).is_ok_and(|spec| spec.compile(&CompileOptions::default()).is_ok())
}

/// The files whose contents make `run_one` panic (the panic hook prints why).
fn failing(files: &[(PathBuf, Vec<u8>)]) -> Vec<&Path> {
    let fails = |data: &Vec<u8>| panic::catch_unwind(|| run_one(data)).is_err();
    files.iter().filter(|(_, data)| fails(data)).map(|(path, _)| path.as_path()).collect()
}

/// The files of a directory, sorted by name, with their contents.
fn read_dir(dir: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {dir}: {e}"))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .map(|path| {
            let data = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            (path, data)
        })
        .collect();
    files.sort();
    files
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.replace('_', "").parse().unwrap_or_else(|_| panic!("{name}={value:?} is not a number")))
}

/// The libFuzzer dictionary's tokens: lines `"..."` (optionally `name="..."`)
/// with `\"`, `\\` and `\xNN` escapes.
fn dictionary() -> Vec<Vec<u8>> {
    let text = fs::read_to_string(DICT).expect("read the dictionary");
    let quoted = text.lines().filter_map(|line| {
        let line = line.trim();
        let start = line.find('"').filter(|_| !line.starts_with('#'))?;
        line[start + 1..].strip_suffix('"')
    });
    quoted
        .map(|token| {
            let (mut out, mut bytes) = (Vec::new(), token.bytes());
            while let Some(b) = bytes.next() {
                if b != b'\\' {
                    out.push(b);
                    continue;
                }
                match bytes.next() {
                    Some(b'x') => {
                        let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                        let hex = std::str::from_utf8(&hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                        out.push(hex.expect("a \\xNN escape in the dictionary"));
                    }
                    Some(escaped) => out.push(escaped),
                    None => out.push(b'\\'),
                }
            }
            out
        })
        .collect()
}

/// One to four libFuzzer-style byte mutations: flip a bit, overwrite a byte,
/// insert random bytes or a dictionary token, delete a range, or splice in
/// another entry's tail.
fn mutate(mut input: Vec<u8>, entries: &[Vec<u8>], dict: &[Vec<u8>], rng: &mut SplitMix64) -> Vec<u8> {
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() as u64 + 1) as usize;
        match rng.below(6) {
            0 if at < input.len() => input[at] ^= 1 << rng.below(8),
            1 if at < input.len() => input[at] = rng.next() as u8,
            2 => drop(input.splice(at..at, rng.bytes(16))),
            3 if !dict.is_empty() => drop(input.splice(at..at, rng.choose(dict).iter().copied())),
            4 => drop(input.drain(at..(at + rng.below(16) as usize).min(input.len()))),
            5 => {
                let other = rng.choose(entries);
                let from = rng.below(other.len() as u64 + 1) as usize;
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            _ => {}
        }
    }
    input
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and the same stream on
/// every platform for a given seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` for `n` far below 2^64; 0 when `n` is 0.
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// Up to `max` random bytes, short lengths as likely as long ones.
    fn bytes(&mut self, max: u64) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }

    fn choose<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
