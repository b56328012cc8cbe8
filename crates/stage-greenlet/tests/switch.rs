//! The stack switch keeps what a call would keep: values live across a
//! switch, integers and floats, come back intact on both sides; and a
//! backtrace taken on a greenlet's stack ends at its first frame; and a
//! prefetch of a suspended stack disturbs nothing.
//!
//! Both hold for our x86-64 switch and for `jump_fcontext` alike; CI runs
//! them both ways (`--features context-switch`).

use std::backtrace::Backtrace;
use std::hint::black_box;

use stage_greenlet::{switch_to_parent, Greenlet};

/// `rounds` rounds of: send a value made of all the locals, get one back,
/// stir it into all of them. Eight integers and four floats stay live across
/// every switch — more than the callee-saved registers, so some are kept in
/// registers and some in stack slots — and every one of them reaches the
/// result.
fn side(seed: u64, rounds: u32, mut switch: impl FnMut(u64) -> u64) -> u64 {
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h]: [u64; 8] =
        std::array::from_fn(|i| black_box(seed + i as u64));
    let [mut x0, mut x1, mut x2, mut x3]: [f64; 4] =
        std::array::from_fn(|i| black_box(seed as f64 + i as f64));
    for _ in 0..rounds {
        let out = a ^ b ^ c ^ d ^ e ^ f ^ g ^ h ^ (x0 + x1 + x2 + x3) as u64;
        let input = switch(out);
        a = a.wrapping_mul(3).wrapping_add(input);
        b = b.rotate_left(5) ^ input;
        c = c.wrapping_add(a);
        d ^= b;
        e = e.wrapping_sub(c);
        f = f.wrapping_add(d >> 3);
        g ^= e;
        h = h.wrapping_add(f ^ g);
        x0 = x0 * 0.5 + (input % 16) as f64;
        x1 += x0;
        x2 = x2 * 0.25 + x1;
        x3 -= x2 * 0.125;
    }
    a ^ b ^ c ^ d ^ e ^ f ^ g ^ h ^ x0.to_bits() ^ x1.to_bits() ^ x2.to_bits() ^ x3.to_bits()
}

#[test]
fn values_live_across_switches_survive_on_both_sides() {
    const ROUNDS: u32 = 1_000;
    let reply = |m: u64| m.rotate_left(7);

    // What each side must compute if no register is lost: main, with the
    // other side replying `reply(m)` to each `m`, and the other side, whose
    // inputs are main's values after the first (that one starts it) and a
    // last 0 that lets it finish.
    let mut sent = Vec::new();
    let expected_main = side(1, ROUNDS, |m| {
        sent.push(m);
        reply(m)
    });
    let mut inputs = sent[1..].iter().copied().chain([0]);
    let expected_other = side(100, ROUNDS, |_| inputs.next().unwrap_or(u64::MAX));

    let other = Greenlet::new(move |first: u64| {
        let mut m = first;
        side(100, ROUNDS, |_| {
            m = switch_to_parent::<u64, u64>(reply(m)).unwrap();
            m
        })
    })
    .unwrap();
    let main = side(1, ROUNDS, |m| other.switch::<u64, u64>(m).unwrap());
    let other_result: u64 = other.switch(0u64).unwrap();
    assert_eq!(main, expected_main);
    assert_eq!(other_result, expected_other);
    assert!(other.is_dead());
}

/// A prefetch is only a hint: asking for a suspended greenlet's stack
/// before every switch to it leaves its registers where the switch finds
/// them, and every value as it was. (It reads the saved context out of the
/// record to know where to look: this is what would catch one not put back.)
#[test]
fn a_prefetch_before_each_switch_changes_nothing() {
    const ROUNDS: u32 = 200;
    let mut sent = Vec::new();
    let expected = side(7, ROUNDS, |m| {
        sent.push(m);
        m ^ 0x5555
    });
    let other = Greenlet::new(move |first: u64| {
        let mut m = first;
        loop {
            m = switch_to_parent::<u64, u64>(m ^ 0x5555).unwrap();
        }
    })
    .unwrap();
    let weak = other.downgrade();
    weak.prefetch(8); // not started: nothing saved yet
    let main = side(7, ROUNDS, |m| {
        weak.prefetch(64); // suspended in its switch to us
        other.switch::<u64, u64>(m).unwrap()
    });
    assert_eq!(main, expected);
    assert_eq!(sent.len(), ROUNDS as usize);
    drop(other); // killed where it waits
    weak.prefetch(8); // dead: nothing saved any more
    assert!(weak.is_dead());
}

#[test]
fn a_backtrace_taken_on_a_greenlet_ends_at_its_first_frame() {
    #[inline(never)]
    fn deep(n: u32) -> String {
        if n == 0 {
            Backtrace::force_capture().to_string()
        } else {
            black_box(deep(black_box(n - 1)))
        }
    }
    let g = Greenlet::new(|(): ()| deep(5)).unwrap();
    let trace: String = g.switch(()).unwrap();
    // The walk went up through our frames and stopped at the bottom of the
    // greenlet's stack, not into whatever lies beyond its top.
    assert!(trace.contains("deep"), "{trace}");
    let frames = trace
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .count();
    assert!(frames < 64, "{frames} frames:\n{trace}");
    assert!(
        !trace.contains("test::run_test"),
        "walked off the greenlet's stack:\n{trace}"
    );
}

/// Greenlets do not all start at the same offset within a page: each new
/// stack's first frame starts a cache line lower than the last one's, round
/// `stack::COLOURS` lines, so the frames many parked greenlets keep hot do
/// not all fall in the same few cache sets.
#[test]
fn first_frames_are_spread_over_cache_lines() {
    use stage_greenlet::stack::COLOURS;
    // All alive at once, so that each has a stack of its own.
    let greenlets: Vec<Greenlet> = (0..2 * COLOURS)
        .map(|_| {
            Greenlet::new(|(): ()| {
                let local = black_box(0u8);
                std::ptr::addr_of!(local) as usize
            })
            .unwrap()
        })
        .collect();
    let mut offsets: Vec<usize> = greenlets
        .iter()
        .map(|g| g.switch::<(), usize>(()).unwrap() % 4096 / 64)
        .collect();
    offsets.sort_unstable();
    offsets.dedup();
    // Other tests map stacks at the same time and take colours in between,
    // so not every colour need be ours; without colouring there is one.
    assert!(
        offsets.len() >= 8,
        "first frames at only {} distinct cache lines of a page: {offsets:?}",
        offsets.len()
    );
}
