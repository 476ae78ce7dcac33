//! The live-client library: what a Leptos component uses to receive a topic.
//!
//! The pure parts (`backoff`, `series_buffer`, `session`, `status`) compile everywhere and are
//! tested on the host. The browser transport (`socket`) exists only in the hydrate build; on the server the same
//! components render their initial HTML with the status `Connecting`.

pub mod backoff;
pub mod kpi_values;
pub mod notifications;
pub mod series_buffer;
pub mod session;
pub mod status;

#[cfg(feature = "hydrate")]
mod socket;

use leptos::prelude::*;
use status::ConnectionStatus;

#[cfg(feature = "hydrate")]
pub use socket::Handler;

/// One live connection per page, shared by every widget on it (found through Leptos context).
#[derive(Clone, Copy)]
pub struct Live {
    pub status: RwSignal<ConnectionStatus>,
    /// When data last arrived (ms since the Unix epoch), for "updated 3 s ago".
    pub last_update: RwSignal<Option<f64>>,
    #[cfg(feature = "hydrate")]
    client: StoredValue<socket::LiveClient, LocalStorage>,
}

impl Live {
    /// Creates the page's connection (opening the socket in the browser) and provides it as context.
    pub fn provide() -> Self {
        let status = RwSignal::new(ConnectionStatus::Connecting);
        let last_update = RwSignal::new(None);
        let live = Self {
            status,
            last_update,
            #[cfg(feature = "hydrate")]
            client: StoredValue::new_local(socket::LiveClient::connect(status, last_update)),
        };
        provide_context(live);
        live
    }

    /// The page's connection; panics outside a component tree that called [`Live::provide`].
    pub fn expect() -> Self {
        expect_context()
    }

    /// Routes `topic` to `handler` under `widget_id` until the calling component unmounts.
    #[cfg(feature = "hydrate")]
    pub fn subscribe(&self, widget_id: &str, topic: &str, handler: Handler) {
        self.client.with_value(|c| c.subscribe(widget_id, topic, handler));
        let client = self.client;
        let widget_id = widget_id.to_owned();
        on_cleanup(move || client.with_value(|c| c.unsubscribe(&widget_id)));
    }

    /// Asks the server for a fresh snapshot of every widget (manual refresh).
    #[cfg(feature = "hydrate")]
    pub fn refresh_all(&self) {
        self.client.with_value(|c| c.input(session::Input::RefreshAll));
    }

    /// The global live switch: off closes the connection (Paused), on reconnects.
    #[cfg(feature = "hydrate")]
    pub fn set_live(&self, on: bool) {
        self.client.with_value(|c| c.input(session::Input::SetLive(on)));
    }

    /// The Retry button, when Offline or waiting to reconnect.
    #[cfg(feature = "hydrate")]
    pub fn retry(&self) {
        self.client.with_value(|c| c.input(session::Input::RetryNow));
    }
}
