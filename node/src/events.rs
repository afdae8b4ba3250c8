//! Live updates inside the node: what changed, broadcast to the server-sent event streams of the
//! kiosk and staff pages, and the shutdown signal that ends those streams.

use tokio::sync::{broadcast, watch};

/// Something a page may want to redraw for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// A kiosk station's session changed (card inserted or pulled, step done, expired).
    Kiosk { station: String },
    /// A request was created or changed.
    Request,
    /// A citizen asked for help, or a clerk answered.
    Help,
    /// A device changed state (card in the desk reader, printer out of paper…).
    Device,
    /// The sync status changed (a round ended, the link went down or came back).
    Sync,
}

/// The broadcast of [`NodeEvent`]s; slow listeners miss events and simply redraw.
#[derive(Debug, Clone)]
pub struct Events {
    sender: broadcast::Sender<NodeEvent>,
}

impl Events {
    pub fn new() -> Events {
        let (sender, _) = broadcast::channel(256);
        Events { sender }
    }

    pub fn send(&self, event: NodeEvent) {
        // No listener is fine: nobody is looking at a page.
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.sender.subscribe()
    }
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

/// Set once when the node stops; long-lived streams watch it and end.
#[derive(Debug, Clone)]
pub struct Shutdown {
    sender: std::sync::Arc<watch::Sender<bool>>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        let (sender, _) = watch::channel(false);
        Shutdown {
            sender: std::sync::Arc::new(sender),
        }
    }

    pub fn cancel(&self) {
        self.sender.send_replace(true);
    }

    /// Resolves when the node stops (at once if it already has).
    pub async fn cancelled(&self) {
        let mut receiver = self.sender.subscribe();
        // An error means the sender is gone, which also means stopping.
        let _ = receiver.wait_for(|stopping| *stopping).await;
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}
