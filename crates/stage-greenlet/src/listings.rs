//! The notes' two greenlet listings, in Rust.
//!
//! Each returns its transcript (the lines the Python version prints, in
//! order) instead of printing, so the lesson can narrate it and the tests can
//! check the order of events.

use std::cell::{OnceCell, RefCell};
use std::error::Error;
use std::rc::Rc;

use crate::{Greenlet, SwitchError};

/// The lines a listing printed, shared by its greenlets.
#[derive(Debug, Clone, Default)]
pub struct Transcript(Rc<RefCell<Vec<String>>>);

impl Transcript {
    /// Record one printed line.
    pub fn print(&self, line: impl Into<String>) {
        self.0.borrow_mut().push(line.into());
    }

    /// Everything printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

/// A late-bound greenlet handle: how two functions that switch to each other
/// name one another (the notes use module globals `g1`, `g2`).
type Slot = Rc<OnceCell<Greenlet>>;

fn get(slot: &Slot) -> Result<&Greenlet, SwitchError> {
    // Filled in before the first switch; `Dead` is the honest error if not.
    slot.get().ok_or(SwitchError::Dead {
        greenlet: "a greenlet not yet created".into(),
    })
}

// ANCHOR: eat_play
/// eat/play: the name travels on the first switch into each greenlet; after
/// that, switches carry nothing (`()`).
pub fn eat_and_play(name: &str) -> Result<Vec<String>, Box<dyn Error>> {
    let out = Transcript::default();
    let (g1_slot, g2_slot): (Slot, Slot) = Default::default();

    let (o, g2) = (out.clone(), g2_slot.clone());
    let eat = move |name: String| -> Result<(), SwitchError> {
        o.print(format!("{name} eat 1"));
        get(&g2)?.switch::<String, ()>(name.clone())?; // starts play with the name
        o.print(format!("{name} eat 2"));
        get(&g2)?.switch::<(), ()>(())?;
        Ok(())
    };
    let (o, g1) = (out.clone(), g1_slot.clone());
    let play = move |name: String| -> Result<(), SwitchError> {
        o.print(format!("{name} play 1"));
        get(&g1)?.switch::<(), ()>(())?;
        o.print(format!("{name} play 2"));
        Ok(()) // returns to its parent: main
    };

    let g1 = Greenlet::builder().name("g1").spawn(eat)?;
    let g2 = Greenlet::builder().name("g2").spawn(play)?;
    let _ = (g1_slot.set(g1.clone()), g2_slot.set(g2));
    // Main waits for whichever greenlet returns to it first: play.
    g1.switch::<String, Result<(), SwitchError>>(name.to_string())??;
    Ok(out.lines())
}
// ANCHOR_END: eat_play

/// Logs a line when dropped: proof that a frame was unwound.
struct Noisy(Transcript, &'static str);

impl Drop for Noisy {
    fn drop(&mut self) {
        self.0.print(self.1);
    }
}

// ANCHOR: test1_test2
/// test1/test2: 12, 56, 34 — and 78 never, because nothing switches back
/// to test2. Dropping its last handle kills it: the stack unwinds from the
/// pending switch, so its local's `Drop` runs but line 78 does not.
pub fn test1_and_test2() -> Result<Vec<String>, Box<dyn Error>> {
    let out = Transcript::default();
    let (gr1_slot, gr2_slot): (Slot, Slot) = Default::default();

    let (o, gr2) = (out.clone(), gr2_slot.clone());
    let test1 = move |()| -> Result<(), SwitchError> {
        o.print("12");
        get(&gr2)?.switch::<(), ()>(())?;
        o.print("34");
        Ok(())
    };
    let (o, gr1) = (out.clone(), gr1_slot.clone());
    let test2 = move |()| -> Result<(), SwitchError> {
        let _local = Noisy(o.clone(), "(test2's local dropped: its stack was unwound)");
        o.print("56");
        get(&gr1)?.switch::<(), ()>(())?;
        o.print("78"); // never runs
        Ok(())
    };

    let gr1 = Greenlet::builder().name("gr1").spawn(test1)?;
    let gr2 = Greenlet::builder().name("gr2").spawn(test2)?;
    let _ = (gr1_slot.set(gr1.clone()), gr2_slot.set(gr2.clone()));
    gr1.switch::<(), Result<(), SwitchError>>(())??; // test1 returns to main
    out.print(format!("(gr2 is suspended, dead: {})", gr2.is_dead()));
    drop((gr1, gr2, gr1_slot, gr2_slot)); // the last handles: gr2 is killed
    Ok(out.lines())
}
// ANCHOR_END: test1_test2

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eat_and_play_prints_the_notes_four_lines_in_order() {
        assert_eq!(
            eat_and_play("egon").unwrap(),
            ["egon eat 1", "egon play 1", "egon eat 2", "egon play 2"]
        );
    }

    #[test]
    fn test1_and_test2_never_print_78_but_drop_test2s_local() {
        let lines = test1_and_test2().unwrap();
        assert_eq!(&lines[..3], ["12", "56", "34"]);
        assert!(!lines.iter().any(|l| l == "78"), "{lines:?}");
        assert_eq!(lines[3], "(gr2 is suspended, dead: false)");
        assert!(lines[4].starts_with("(test2's local dropped"), "{lines:?}");
        assert_eq!(lines.len(), 5);
    }
}
