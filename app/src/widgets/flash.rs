//! Briefly highlighting what just changed (a KPI's value, a table's row).

use leptos::prelude::*;

/// How long a change stays highlighted.
#[cfg(feature = "hydrate")]
const FLASH: std::time::Duration = std::time::Duration::from_millis(1200);

/// The keys to highlight now: each key `changed` reports stays in for a moment.
pub fn flashing(changed: impl Fn() -> Vec<String> + 'static) -> RwSignal<Vec<String>> {
    let on = RwSignal::new(Vec::<String>::new());
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let keys = changed();
        if keys.is_empty() {
            return;
        }
        on.set(keys.clone());
        set_timeout(move || on.update(|f| f.retain(|k| !keys.contains(k))), FLASH);
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = changed;
    on
}
