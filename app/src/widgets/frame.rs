//! The card around every widget: title, mode badge and selector, the widget's own refresh button,
//! its error, and data attributes that tell people and tests what it holds.

use crate::live::{Live, TopicFeed, TopicView, feed::FeedState};
use leptos::prelude::*;
use protocol::ActivityAction;
use protocol::dashboard::{WidgetDef, WidgetMode};

/// What a widget's frame needs besides its body.
#[derive(Clone)]
pub struct Framed {
    pub def: WidgetDef,
    pub state: FeedState,
    pub refresh: Callback<()>,
    pub set_mode: Callback<WidgetMode>,
}

impl Framed {
    /// Binds a frame to a feed: the refresh button refreshes it; a mode change applies at once,
    /// is saved for the user on the server, and is reported as activity.
    pub fn new<V: TopicView>(def: &WidgetDef, feed: TopicFeed<V>) -> Self {
        let live = Live::expect();
        let (id, title) = (def.id, def.title.clone());
        Self {
            def: def.clone(),
            state: feed.state,
            refresh: Callback::new(move |()| feed.refresh()),
            set_mode: Callback::new(move |mode: WidgetMode| {
                feed.set_mode(mode);
                live.report(ActivityAction::ChangeMode, format!("{title} to {mode}"));
                save_mode(id, mode);
            }),
        }
    }
}

fn save_mode(widget: i64, mode: WidgetMode) {
    #[cfg(feature = "hydrate")]
    leptos::task::spawn_local(async move {
        let url = format!("/api/me/widget-modes/{widget}");
        if let Err(e) = crate::http::send_json("PUT", &url, Some(&protocol::dashboard::ModeChoice { mode })).await {
            leptos::logging::warn!("livedash: saving the mode failed: {e}");
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (widget, mode);
}

#[component]
pub fn WidgetFrame(
    framed: Framed,
    /// Extra data attributes' worth: e.g. how many points a chart holds.
    #[prop(optional, into)]
    points: Option<Signal<usize>>,
    children: Children,
) -> AnyView {
    let Framed { def, state, refresh, set_mode } = framed;
    let dom_id = def.dom_id();
    let select_id = format!("{dom_id}-mode");
    let title = def.title.clone();
    let on_change = move |ev: leptos::ev::Event| {
        if let Some(mode) = WidgetMode::parse(&event_target_value(&ev)) {
            set_mode.run(mode);
        }
    };
    view! {
        <section
            class=format!("widget widget-{}", def.kind.slug().replace('_', "-"))
            // What is shown may be out of date while the connection is not live.
            class:stale=move || !state.status.get().is_receiving() || state.denied.get()
            data-widget-id=dom_id.clone()
            data-kind=def.kind.slug()
            data-topic=def.topic.clone()
            data-mode=move || state.mode.get().slug()
            data-updates=move || state.updates.get()
            data-gaps=move || state.gaps.get()
            data-held=move || state.held.get()
            data-offset=move || state.offset.get().map(|o| o.to_string()).unwrap_or_default()
            data-denied=move || state.denied.get().then_some("true")
            data-points=move || points.map(|p| p.get().to_string())
            aria-labelledby=format!("{dom_id}-title")
        >
            <header class="widget-header">
                <h2 id=format!("{dom_id}-title")>{def.title.clone()}</h2>
                <span class=move || format!("mode-badge mode-{}", state.mode.get().slug())>
                    {move || state.mode.get().to_string()}
                </span>
                <label class="visually-hidden" for=select_id.clone()>{format!("Update mode of {title}")}</label>
                <select id=select_id class="mode-select" on:change=on_change>
                    {WidgetMode::ALL
                        .into_iter()
                        .map(|mode| {
                            view! {
                                <option value=mode.slug() selected=move || state.mode.get() == mode>
                                    {mode.to_string()}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
                <button
                    class="button-quiet widget-refresh"
                    type="button"
                    aria-label=format!("Refresh {}", def.title)
                    title="Refresh now"
                    on:click=move |_| refresh.run(())
                >
                    "↻"
                </button>
            </header>
            <Show when=move || state.error.with(Option::is_some)>
                <p class="widget-error" role="alert">{move || state.error.get().unwrap_or_default()}</p>
            </Show>
            {children()}
        </section>
    }
    .into_any()
}
