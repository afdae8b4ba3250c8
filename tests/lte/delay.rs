//! `lte-delay`: the propagation delay of the emulated LTE link (`busloket_e2e::lte`), because this
//! kernel has no netem. It binds an NFQUEUE in the network namespace it runs in and holds every
//! packet the kernel queues to it for a fixed time before accepting it, in arrival order.
//!
//! `lte-delay --queue 0 --delay-ms 30`, started through `ip netns exec NS`. It says on stderr when
//! it is bound (the line starting `lte-delay: ready`), and stops cleanly on SIGTERM or SIGINT,
//! or when its standard input closes (the test process that started it died), accepting the
//! packets it still holds and printing what it did. It never drops a packet: loss and the rate
//! limit are the kernel's (iptables `statistic` and TBF), see `tests/support/lte.rs`.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nfq::{Queue, Verdict};

/// How long the loop sleeps at most between two looks at the queue: `nfq` offers no descriptor
/// to wait on, so the loop polls, and this is the most a packet is held beyond its delay.
const TICK: Duration = Duration::from_millis(1);

/// How many packets the kernel keeps waiting for us before it drops new ones (its default is
/// 1024, which a fast downlink fills within 30 ms).
const QUEUE_MAX_LEN: u32 = 16_384;

struct Options {
    queue: u16,
    delay: Duration,
}

fn parse_options() -> Result<Options> {
    let mut queue = None;
    let mut delay = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--queue" => queue = Some(value.parse().context("--queue: a queue number")?),
            "--delay-ms" => {
                delay = Some(Duration::from_millis(
                    value.parse().context("--delay-ms: milliseconds")?,
                ))
            }
            _ => bail!("unknown argument {arg}; usage: lte-delay --queue N --delay-ms MS"),
        }
    }
    Ok(Options {
        queue: queue.context("--queue is missing")?,
        delay: delay.context("--delay-ms is missing")?,
    })
}

fn main() -> Result<()> {
    let options = parse_options()?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install a signal handler")?;
    }
    // The test process holds our stdin; when it dies without stopping us, the pipe closes.
    let orphaned = Arc::new(AtomicBool::new(false));
    {
        let orphaned = Arc::clone(&orphaned);
        std::thread::spawn(move || {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            orphaned.store(true, Ordering::Relaxed);
        });
    }

    let mut queue = Queue::open().context("cannot open a netfilter netlink socket")?;
    queue
        .bind(options.queue)
        .with_context(|| format!("cannot bind NFQUEUE {}", options.queue))?;
    // Only the packet id is needed, not the packet: metadata only keeps each message small.
    queue.set_copy_range(options.queue, 0)?;
    queue.set_queue_max_len(options.queue, QUEUE_MAX_LEN)?;
    queue.set_recv_gso(options.queue, true)?;
    queue.set_fail_open(options.queue, false)?;
    queue.set_nonblocking(true);
    eprintln!(
        "lte-delay: ready: queue {} holds every packet {} ms",
        options.queue,
        options.delay.as_millis()
    );

    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    let mut delayed: u64 = 0;
    let mut vanished: u64 = 0;
    let mut most_held = 0;
    while !stop.load(Ordering::Relaxed) && !orphaned.load(Ordering::Relaxed) {
        loop {
            match queue.recv() {
                Ok(message) => held.push_back((Instant::now() + options.delay, message)),
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                // The kernel answers a verdict for a packet it already let go (its interface
                // went down, `LteLink::cut`) with an error message on the socket.
                Err(err) if err.kind() == ErrorKind::NotFound => vanished += 1,
                Err(err) => return Err(err).context("cannot receive from the NFQUEUE"),
            }
        }
        most_held = most_held.max(held.len());
        let now = Instant::now();
        while held.front().is_some_and(|(due, _)| *due <= now) {
            let (_, message) = held.pop_front().expect("a front element");
            accept(&mut queue, message)?;
            delayed += 1;
        }
        let next = held.front().map_or(TICK, |(due, _)| {
            due.saturating_duration_since(Instant::now()).min(TICK)
        });
        std::thread::sleep(next);
    }

    let released = held.len();
    for (_, message) in held {
        accept(&mut queue, message)?;
    }
    let _ = queue.unbind(options.queue);
    let why = if stop.load(Ordering::Relaxed) {
        "stopped by a signal"
    } else {
        "its parent went away"
    };
    eprintln!(
        "lte-delay: {why}: {delayed} packets let through after {} ms ({vanished} of them had \
         gone with their interface), {released} let through early, at most {most_held} held at once",
        options.delay.as_millis()
    );
    Ok(())
}

fn accept(queue: &mut Queue, mut message: nfq::Message) -> Result<()> {
    message.set_verdict(Verdict::Accept);
    queue.verdict(message).context("cannot send a verdict")
}
