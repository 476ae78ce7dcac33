//! Saving one setting of a widget from the dashboard editor (its notifications, its thresholds):
//! `PUT /api/dashboards/{id}/widgets/{widget}/{setting}`, then the page's copy of the dashboard
//! takes the new value, so what the widget shows follows at once. One way for every setting form.

use super::Loaded;
use leptos::prelude::*;
use protocol::dashboard::WidgetDef;

/// What a setting form shows of its last save.
#[derive(Clone, Copy)]
pub struct SaveState {
    pub saved: RwSignal<bool>,
    pub error: RwSignal<Option<String>>,
}

impl Default for SaveState {
    fn default() -> Self {
        Self { saved: RwSignal::new(false), error: RwSignal::new(None) }
    }
}

/// Sends `value` as the widget's `setting`; on success `apply` puts it into the page's copy of the
/// widget (if the same dashboard is still shown).
pub fn save<T>(
    loaded: RwSignal<Loaded>,
    widget: i64,
    setting: &'static str,
    value: T,
    state: SaveState,
    apply: fn(&mut WidgetDef, T),
) where
    T: serde::Serialize + Clone + 'static,
{
    let Loaded::Ready(view) = loaded.get_untracked() else { return };
    state.saved.set(false);
    #[cfg(feature = "hydrate")]
    leptos::task::spawn_local(async move {
        let url = format!("/api/dashboards/{}/widgets/{widget}/{setting}", view.id);
        match crate::http::send_json("PUT", &url, Some(&value)).await {
            Ok(_) => {
                state.error.set(None);
                state.saved.set(true);
                loaded.update(|l| match l {
                    Loaded::Ready(v) if v.id == view.id => {
                        v.widgets.iter_mut().filter(|w| w.id == widget).for_each(|w| apply(w, value.clone()))
                    }
                    _ => {}
                });
            }
            Err(e) => state.error.set(Some(e)),
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (view, widget, setting, value, apply);
}
