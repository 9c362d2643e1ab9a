//! Property tests for the engineering rule "chunk size and arrival order must never change a
//! result", and for row accounting.
//!
//! The pipeline cuts its input into line-aligned chunks whose boundaries depend on the configured
//! chunk size and on how the network or disk happened to deliver blocks; parse workers then finish
//! chunks in whatever order they like, and the task actors merge partial states as they come. None
//! of that may show in the output: the same bytes must give the same reports, the same reject list
//! (with the same line numbers) and the same row counts whatever the chunking and whatever the
//! order. A bug here would be nondeterministic in production (it depends on timing and block
//! sizes), so it would hardly ever show up in example-based tests; random chunkings, random block
//! sizes and random merge orders over generated inputs (CRLF or LF, blank and broken rows, with or
//! without a final line ending) are the way to catch it.
//!
//! The reference is an independent one-pass run: the header split off by hand, the whole body
//! parsed as a single chunk and folded into one state per analysis. Row counts are checked against
//! what the generator reports it wrote and against lines counted directly from the raw bytes.

use proptest::prelude::*;

use wxflow::actors::lines::LineLedger;
use wxflow::actors::parsers::renumber;
use wxflow::chunk::{Chunk, Chunker};
use wxflow::date::{Day, Month};
use wxflow::gen::{generate, GenLimit, GenOptions, GenStats};
use wxflow::parse::{parse_chunk, Parsed, Reading};
use wxflow::report::{task1, task2, task3};
use wxflow::schema::Columns;
use wxflow::schema::{parse_header, Schema};
use wxflow::tasks::forecast::{Forecast, ForecastLine, ForecastMethod, ForecastParams};
use wxflow::tasks::hottest::{Hottest, HottestParams, HottestReport};
use wxflow::tasks::window::{Hit, Window, WindowParams};
use wxflow::tasks::{Analysis, DaySpan};
use wxflow::tenths::Tenths;

/// Upper bound on chunks (hence on body lines) of any generated case: 12 days of 144 rows plus at
/// most 20 blank and 20 bad lines. Permutations are drawn over this many indices.
const MAX_CHUNKS: usize = 2048;

/// Longest line the chunker accepts; generated lines are far shorter.
const MAX_LINE: usize = 1 << 16;

// ---------------------------------------------------------------------------------------------
// Inputs

/// Everything that determines one test case: the generated file and how it is cut.
#[derive(Debug, Clone)]
struct Case {
    days: u32,
    seed: u64,
    crlf: bool,
    blank: u64,
    bad: u64,
    /// Drop the final line ending, so the last line is unterminated.
    unterminated: bool,
    /// Chunk target size (clamped to the input length).
    target: usize,
    /// Size of the blocks pushed into the chunker (clamped to the input length).
    block: usize,
}

/// A size from 1 byte to "everything", spread over several orders of magnitude.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![1..=16usize, 17..=512usize, 513..=16_384usize, Just(usize::MAX)]
}

prop_compose! {
    fn case()(
        days in 2u32..=12,
        seed in any::<u64>(),
        crlf in any::<bool>(),
        blank in 0u64..=20,
        bad in 0u64..=20,
        unterminated in any::<bool>(),
        target in size(),
        block in size(),
    ) -> Case {
        Case { days, seed, crlf, blank, bad, unterminated, target, block }
    }
}

/// A random order of chunk indices: a shuffle of `0..MAX_CHUNKS`, of which [`order`] keeps the
/// indices below the actual chunk count (a uniformly random permutation of those).
fn shuffle() -> impl Strategy<Value = Vec<usize>> {
    Just((0..MAX_CHUNKS).collect::<Vec<usize>>()).prop_shuffle()
}

/// The indices `0..n` in the order given by a [`shuffle`].
fn order(shuffle: &[usize], n: usize) -> Vec<usize> {
    assert!(n <= MAX_CHUNKS, "{n} chunks exceed MAX_CHUNKS");
    shuffle.iter().copied().filter(|&i| i < n).collect()
}

/// The generated input bytes and what the generator says it wrote.
fn make_input(c: &Case) -> (Vec<u8>, GenStats) {
    let opts = GenOptions {
        start: Day::from_ymd(2006, 5, 30).unwrap(),
        limit: GenLimit::Days(c.days),
        seed: c.seed,
        crlf: c.crlf,
        blank_lines: c.blank,
        bad_rows: c.bad,
    };
    let mut bytes = Vec::new();
    let stats = generate(&opts, &mut bytes).unwrap();
    if c.unterminated {
        drop_final_line_ending(&mut bytes, c.crlf);
    }
    (bytes, stats)
}

/// Removes the last line ending unless the last line is empty (which would remove a line).
fn drop_final_line_ending(bytes: &mut Vec<u8>, crlf: bool) {
    let eol = if crlf { 2 } else { 1 };
    let last_line_empty = bytes.len() > eol && bytes[bytes.len() - eol - 1] == b'\n';
    if !last_line_empty {
        bytes.truncate(bytes.len() - eol);
    }
}

/// The lines of `input` split independently of the library: on `\n`, `\r` stripped, a final
/// unterminated line counted. Index 0 is line 1 (the header).
fn all_lines(input: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    if input.ends_with(b"\n") {
        lines.pop();
    }
    lines.into_iter().map(|l| l.strip_suffix(b"\r").unwrap_or(l)).collect()
}

fn header_schema(line: &[u8]) -> Schema {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    parse_header(line, 1, &Columns::default()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Cutting and parsing

/// The reference: header split off by hand, the whole body parsed as one chunk.
fn parse_whole(input: &[u8]) -> Parsed {
    let end = input.iter().position(|&b| b == b'\n').expect("header line") + 1;
    let schema = header_schema(&input[..end]);
    parse_chunk(&input[end..], 2, &schema, true)
}

/// Splits `input` into blocks of about `block` bytes the way the file reader does: each block
/// ends after the last line break it contains (or runs to the next one).
fn aligned_blocks(input: &[u8], block: usize) -> Vec<&[u8]> {
    let mut blocks = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let window = &rest[..block.min(rest.len())];
        let end = match window.iter().rposition(|&b| b == b'\n') {
            Some(pos) => pos + 1,
            None => rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |pos| pos + 1),
        };
        blocks.push(&rest[..end]);
        rest = &rest[end..];
    }
    blocks
}

/// Cuts `input` as the fetcher does: blocks of `block` bytes pushed into a chunker of `target`
/// bytes, the header taken with `take_line` first, the rest drained with `finish` at the end.
/// Even block sizes go through `push_bytes` as line-aligned blocks (the file and stdin path, where
/// blocks become chunks without copying); odd ones through `push_bytes` at arbitrary boundaries
/// (HTTP, whose reads the chunker copies in no further than the next cut needs).
fn cut(input: &[u8], target: usize, block: usize) -> (Schema, Vec<Chunk>) {
    let mut chunker = Chunker::new(target.min(input.len()), MAX_LINE, 0, 1);
    let (mut schema, mut chunks) = (None, Vec::new());
    let block = block.clamp(1, input.len());
    let pieces =
        if block.is_multiple_of(2) { aligned_blocks(input, block) } else { input.chunks(block).collect() };
    for piece in pieces {
        chunker.push_bytes(bytes::Bytes::copy_from_slice(piece));
        if schema.is_none() {
            schema = chunker.take_line().unwrap().map(|line| header_schema(&line));
        }
        if schema.is_some() {
            while let Some(chunk) = chunker.next_chunk().unwrap() {
                chunks.push(chunk);
            }
        }
    }
    chunks.extend(std::iter::from_fn(|| chunker.finish()));
    (schema.expect("header found"), chunks)
}

/// Parses every chunk on its own and numbers its lines as the parse workers do: from 0, then from
/// the first line the ledger finds once the chunks before it are handed in, here in reverse
/// order (the header is line 1); the last chunk is marked as the end of the input.
fn parse_each(schema: &Schema, chunks: &[Chunk]) -> Vec<Parsed> {
    let last = chunks.len().saturating_sub(1);
    let lines = LineLedger::new(chunks.first().map_or(0, |c| c.seq), 2);
    let mut numbered: Vec<(u64, Parsed)> = chunks
        .iter()
        .enumerate()
        .rev()
        .flat_map(|(i, c)| {
            let parsed = parse_chunk(&c.data, 0, schema, i == last);
            lines.number(c.seq, parsed.lines, (c.seq, parsed))
        })
        .map(|(first_line, (seq, mut parsed))| {
            renumber(&mut parsed, first_line);
            (seq, parsed)
        })
        .collect();
    assert_eq!(numbered.len(), chunks.len(), "every chunk numbered once");
    numbered.sort_by_key(|(seq, _)| *seq);
    numbered.into_iter().map(|(_, parsed)| parsed).collect()
}

/// Cuts and parses a case's input.
fn parse_cut(input: &[u8], c: &Case) -> (Vec<Chunk>, Vec<Parsed>) {
    let (schema, chunks) = cut(input, c.target, c.block);
    let parsed = parse_each(&schema, &chunks);
    (chunks, parsed)
}

// ---------------------------------------------------------------------------------------------
// Analyses

/// One state of each analysis, with both forecast methods.
#[derive(Clone)]
struct States {
    hottest: Hottest,
    window: Window,
    offset: Forecast,
    proportional: Forecast,
}

/// Everything the reports show.
#[derive(Debug, PartialEq)]
struct Reports {
    hottest: HottestReport,
    window: Vec<Hit>,
    offset: Vec<ForecastLine>,
    proportional: Vec<ForecastLine>,
}

fn month() -> Month {
    Month { year: 2006, month: 6 }
}

fn forecast_params(method: ForecastMethod) -> ForecastParams {
    ForecastParams::new(month(), 9, Tenths(250), method, 2)
}

impl States {
    fn new() -> States {
        let window = WindowParams::new(month(), 9, Tenths(223), Tenths(10), Tenths(103), Tenths(2));
        States {
            hottest: Hottest::default(),
            window: Window::new(window),
            offset: Forecast::new(forecast_params(ForecastMethod::Offset)),
            proportional: Forecast::new(forecast_params(ForecastMethod::Proportional)),
        }
    }

    fn of(readings: &[Reading]) -> States {
        let mut s = States::new();
        s.absorb(readings);
        s
    }

    fn absorb(&mut self, readings: &[Reading]) {
        self.hottest.absorb(readings);
        self.window.absorb(readings);
        self.offset.absorb(readings);
        self.proportional.absorb(readings);
    }

    /// Absorbs as the task actors do: skipping a batch whose days miss an analysis's days.
    fn absorb_within(&mut self, readings: &[Reading]) {
        let span = DaySpan::of(readings);
        self.hottest.absorb_within(readings, span);
        self.window.absorb_within(readings, span);
        self.offset.absorb_within(readings, span);
        self.proportional.absorb_within(readings, span);
    }

    fn merge(&mut self, other: States) {
        self.hottest.merge(other.hottest);
        self.window.merge(other.window);
        self.offset.merge(other.offset);
        self.proportional.merge(other.proportional);
    }

    fn merged(mut self, other: States) -> States {
        self.merge(other);
        self
    }

    fn reports(&self) -> Reports {
        Reports {
            hottest: self.hottest.report(&HottestParams { top_days: 10 }),
            window: self.window.report(),
            offset: self.offset.report(),
            proportional: self.proportional.report(),
        }
    }

    /// The reports as the output files render them.
    fn rendered(&self) -> [String; 4] {
        let r = self.reports();
        [task1(&r.hottest), task2(&r.window), task3(&r.offset), task3(&r.proportional)]
    }
}

/// Reports of the reference one-pass run.
fn one_pass_reports(input: &[u8]) -> Reports {
    States::of(&parse_whole(input).readings).reports()
}

/// Each chunk into its own fresh state, then all merged in `order`.
fn merge_in_order(parsed: &[Parsed], order: &[usize]) -> States {
    let mut partial: Vec<Option<States>> = parsed.iter().map(|p| Some(States::of(&p.readings))).collect();
    let mut states = order.iter().map(|&i| partial[i].take().expect("each chunk merged once"));
    let first = states.next().unwrap_or_else(States::new);
    states.fold(first, States::merged)
}

/// All chunks' readings absorbed into one state, chunk by chunk in `order`.
fn absorb_in_order(parsed: &[Parsed], order: &[usize]) -> States {
    let mut state = States::new();
    for &i in order {
        state.absorb(&parsed[i].readings);
    }
    state
}

/// The readings split into three groups: reading `i` goes to group `labels[i % labels.len()]`.
fn partition(parsed: &[Parsed], labels: &[u8]) -> [States; 3] {
    let mut groups: [Vec<Reading>; 3] = Default::default();
    for (i, r) in parsed.iter().flat_map(|p| &p.readings).enumerate() {
        groups[usize::from(labels[i % labels.len()])].push(*r);
    }
    groups.map(|g| States::of(&g))
}

fn sum(parsed: &[Parsed], count: impl Fn(&Parsed) -> u64) -> u64 {
    parsed.iter().map(count).sum()
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// 1. Chunked, one fresh state per chunk, merged in a random order == one pass.
    #[test]
    fn merging_per_chunk_states_in_any_order_equals_one_pass(case in case(), shuffle in shuffle()) {
        let (input, _) = make_input(&case);
        let (_, parsed) = parse_cut(&input, &case);
        let merged = merge_in_order(&parsed, &order(&shuffle, parsed.len()));
        prop_assert_eq!(merged.reports(), one_pass_reports(&input));
    }

    /// 2. All chunks absorbed into one state, in a random chunk order == one pass.
    #[test]
    fn absorbing_chunks_in_any_order_equals_one_pass(case in case(), shuffle in shuffle()) {
        let (input, _) = make_input(&case);
        let (_, parsed) = parse_cut(&input, &case);
        let state = absorb_in_order(&parsed, &order(&shuffle, parsed.len()));
        prop_assert_eq!(state.reports(), one_pass_reports(&input));
    }

    /// 2b. The same, skipping each chunk whose days miss an analysis's days (window, forecast), as
    ///     the task actors do: the inputs start two days before the window, so chunks miss it,
    ///     overlap it and lie in it.
    #[test]
    fn skipping_chunks_outside_an_analysiss_days_equals_one_pass(case in case(), shuffle in shuffle()) {
        let (input, _) = make_input(&case);
        let (_, parsed) = parse_cut(&input, &case);
        let mut state = States::new();
        for i in order(&shuffle, parsed.len()) {
            state.absorb_within(&parsed[i].readings);
        }
        prop_assert_eq!(state.reports(), one_pass_reports(&input));
    }

    /// 3. Merge is associative and commutative on random partitions of the readings.
    #[test]
    fn merge_is_associative_and_commutative(case in case(), labels in prop::collection::vec(0u8..3, 1..=32)) {
        let (input, _) = make_input(&case);
        let (_, parsed) = parse_cut(&input, &case);
        let [a, b, c] = partition(&parsed, &labels);
        let ab = a.clone().merged(b.clone());
        let ba = b.clone().merged(a.clone());
        prop_assert_eq!(ab.reports(), ba.reports(), "a∪b != b∪a");
        let ab_c = ab.merged(c.clone());
        let a_bc = a.merged(b.merged(c));
        prop_assert_eq!(ab_c.reports(), a_bc.reports(), "(a∪b)∪c != a∪(b∪c)");
        prop_assert_eq!(ab_c.reports(), one_pass_reports(&input), "(a∪b)∪c != one pass");
    }

    /// 4. Every line is counted once, as exactly one of reading, reject or blank, and the totals
    ///    are what the generator wrote.
    #[test]
    fn row_accounting_adds_up(case in case()) {
        let (input, stats) = make_input(&case);
        let (chunks, parsed) = parse_cut(&input, &case);
        let body: Vec<u8> = chunks.iter().flat_map(|ch| ch.data.iter().copied()).collect();
        let header_end = input.iter().position(|&b| b == b'\n').unwrap() + 1;
        prop_assert_eq!(&body[..], &input[header_end..], "chunks do not cover the body exactly");
        for p in &parsed {
            prop_assert_eq!(p.lines, p.readings.len() as u64 + p.rejects.len() as u64 + p.blank);
        }
        prop_assert_eq!(sum(&parsed, |p| p.lines), all_lines(&input).len() as u64 - 1);
        prop_assert_eq!(sum(&parsed, |p| p.blank), stats.blank);
        prop_assert_eq!(sum(&parsed, |p| p.rejects.len() as u64), stats.bad);
        prop_assert_eq!(sum(&parsed, |p| p.readings.len() as u64), stats.rows);
    }

    /// 5. Rejects (line numbers, reasons, raw text) do not depend on the chunking, and each one
    ///    points at the line it quotes.
    #[test]
    fn reject_line_numbers_are_exact_whatever_the_chunking(case in case()) {
        let (input, _) = make_input(&case);
        let (_, parsed) = parse_cut(&input, &case);
        let rejects: Vec<_> = parsed.iter().flat_map(|p| p.rejects.clone()).collect();
        prop_assert_eq!(&rejects, &parse_whole(&input).rejects);
        let lines = all_lines(&input);
        for r in &rejects {
            let actual = String::from_utf8_lossy(lines[r.line as usize - 1]);
            prop_assert_eq!(&r.raw, &actual, "reject at line {}", r.line);
        }
    }
}

/// Fixed chunk sizes, from one byte per chunk to the whole input, render byte-identical reports.
#[test]
fn rendered_reports_are_identical_for_fixed_chunk_sizes() {
    let case = Case {
        days: 12,
        seed: 2006,
        crlf: true,
        blank: 7,
        bad: 11,
        unterminated: false,
        target: usize::MAX,
        block: 4096,
    };
    let (input, _) = make_input(&case);
    let whole = States::of(&parse_whole(&input).readings).rendered();
    assert!(whole[1].lines().count() > 0, "the window has hits, so task2 is really compared");
    for target in [1, 7, 100, 4096, input.len()] {
        let (_, parsed) = parse_cut(&input, &Case { target, ..case.clone() });
        let reversed: Vec<usize> = (0..parsed.len()).rev().collect();
        let chunked = merge_in_order(&parsed, &reversed).rendered();
        for (name, (got, want)) in
            ["task1", "task2", "task3 offset", "task3 proportional"].iter().zip(chunked.iter().zip(&whole))
        {
            assert!(got == want, "{name} differs at chunk target {target}:\n{got}\n---\n{want}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Checkpoint, restore and replay

/// The durable states of a run, as a checkpoint holds them, through the real on-disk encoding.
fn checkpoint_roundtrip(s: &States, chunk: u64) -> States {
    use wxflow::durable::{Position, Snapshot, SourceIdentity, FORMAT_VERSION};
    let snapshot = Snapshot {
        version: FORMAT_VERSION,
        source: SourceIdentity {
            location: "x".into(),
            size: None,
            etag: None,
            last_modified: None,
            mtime_ns: None,
        },
        settings: Default::default(),
        position: Position { byte: 0, chunk, line: 0 },
        rows: Default::default(),
        rejects_len: 0,
        header: Vec::new(),
        leading_blank: 0,
        runs: 1,
        checkpoints: 1,
        restarts: Default::default(),
        retries: 0,
        hottest: s.hottest.clone(),
        window: s.window.clone(),
        forecast: s.offset.clone(),
    };
    let back = wxflow::durable::store::decode(&wxflow::durable::store::encode(&snapshot)).expect("decodes");
    assert_eq!(back.position.chunk, chunk);
    // The proportional forecast is the same kind of state as the offset one; carry it along.
    States {
        hottest: back.hottest,
        window: back.window,
        offset: back.forecast,
        proportional: s.proportional.clone(),
    }
}

/// A run that checkpoints every `every` chunks (each epoch folded into a fresh partial, in a
/// random order, then merged), crashes when it reaches chunk `crash` (losing the open epoch and
/// everything in memory), restarts from its last checkpoint and replays the chunks after it.
fn run_with_crash(parsed: &[Parsed], every: usize, crash: usize, shuffle: &[usize]) -> States {
    let mut committed = (States::new(), 0usize);
    let mut crashed = false;
    let mut next = 0usize;
    let mut durable = checkpoint_roundtrip(&committed.0, 0);
    while next < parsed.len() {
        let end = (next + every).min(parsed.len());
        let mut partial = States::new();
        let mut lost = false;
        for i in order(shuffle, end - next) {
            if !crashed && next + i == crash {
                crashed = true;
                lost = true;
                break;
            }
            partial.absorb(&parsed[next + i].readings);
        }
        if lost {
            committed = (durable.clone(), committed.1);
            next = committed.1;
            continue;
        }
        committed.0.merge(partial);
        committed.1 = end;
        durable = checkpoint_roundtrip(&committed.0, end as u64);
        next = end;
    }
    committed.0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// 6. Checkpoint + restore + replay, for any chunking, interval and crash point, gives the
    ///    states of one uninterrupted pass.
    #[test]
    fn checkpoint_restore_and_replay_equal_one_pass(
        case in case(),
        every in 1usize..=16,
        crash in 0usize..MAX_CHUNKS,
        shuffle in shuffle(),
    ) {
        let (input, _) = make_input(&case);
        let (_, parsed) = parse_cut(&input, &case);
        let crash = crash % parsed.len().max(1);
        let state = run_with_crash(&parsed, every, crash, &shuffle);
        prop_assert_eq!(state.reports(), one_pass_reports(&input));
    }
}
