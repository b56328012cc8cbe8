//! Nothing left behind: greenlets that merely waited in the hub stay
//! killable by their own handles.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use stage_greenlet::{switch_to_parent, Greenlet};
use stage_hub::{sleep, spawn, with_timeout, yield_now};

/// Sets its flag when dropped: proves a greenlet's stack was unwound.
struct Flag(Rc<Cell<bool>>);

impl Drop for Flag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn a_stage_greenlet_that_waited_in_the_hub_is_still_killed_by_dropping_its_last_handle() {
    let dropped = Rc::new(Cell::new(false));
    let flag = Flag(dropped.clone());
    let g = Greenlet::new(move |()| {
        let _flag = flag;
        yield_now(); // waits in the hub: the hub switches back to it
        sleep(Duration::from_millis(1)); // and once more, with a timer
        let () = switch_to_parent(()).unwrap(); // then back to main, by hand
        unreachable!("nothing switches to it again");
    })
    .unwrap();
    let () = g.switch(()).unwrap();
    assert!(!dropped.get());
    drop(g); // stage-greenlet's rule: the last handle kills it
    assert!(dropped.get(), "the hub kept it alive");
}

#[test]
fn a_stage_greenlet_may_wait_inside_with_timeout_and_is_still_freed() {
    let dropped = Rc::new(Cell::new(false));
    let flag = Flag(dropped.clone());
    let g = Greenlet::new(move |()| {
        let _flag = flag;
        let timed_out = with_timeout(Duration::from_millis(5), || {
            yield_now(); // a wait inside the block...
            sleep(Duration::from_secs(60)); // ...and one the limit ends
        })
        .is_err();
        let () = switch_to_parent(timed_out).unwrap();
        unreachable!("nothing switches to it again");
    })
    .unwrap();
    let timed_out: bool = g.switch(()).unwrap();
    assert!(timed_out);
    drop(g);
    assert!(dropped.get(), "the hub kept it alive");
    // The hub still serves everyone else.
    assert_eq!(spawn(|| 7).join().unwrap(), 7);
}
