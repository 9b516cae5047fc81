// A lock guard is released by the thread that took it: it cannot be sent elsewhere.
use sharedctypes::Lock;

fn release_elsewhere(lock: &Lock) {
    let guard = lock.acquire().unwrap();
    std::thread::scope(|s| {
        s.spawn(move || drop(guard));
    });
}

fn main() {}
