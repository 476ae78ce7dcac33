//! A collection widget's notifications, chosen by an admin in the dashboard editor: which document
//! changes raise one, its title template and level. Checked here with the server's own
//! [`CollectionNotify::validate`] before it is sent to
//! `PUT /api/dashboards/{id}/widgets/{widget}/notify`, which also checks the topic rules.

use super::Loaded;
use super::widget_setting::{SaveState, save};
use leptos::prelude::*;
use protocol::Level;
use protocol::collection_notify::{CollectionNotify, DocumentOp};

/// The form's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyForm {
    pub ops: Vec<DocumentOp>,
    pub title: String,
    pub level: Level,
}

impl NotifyForm {
    /// What the form shows for a widget's settings (a suggestion when it has none).
    pub fn of(notify: Option<&CollectionNotify>) -> Self {
        match notify {
            Some(n) => Self { ops: n.ops.clone(), title: n.title.clone(), level: n.level },
            None => Self { ops: vec![DocumentOp::Created], title: "{id} {op}".into(), level: Level::Info },
        }
    }

    pub fn toggled(&self, op: DocumentOp, on: bool) -> Self {
        let mut ops: Vec<DocumentOp> = self.ops.iter().copied().filter(|o| *o != op).collect();
        if on {
            ops.push(op);
        }
        ops.sort();
        Self { ops, ..self.clone() }
    }

    /// The settings to send, or why they cannot be.
    pub fn to_notify(&self) -> Result<CollectionNotify, String> {
        let notify = CollectionNotify { ops: self.ops.clone(), title: self.title.trim().to_owned(), level: self.level };
        notify.validate().map_err(|e| e.to_string())?;
        Ok(notify)
    }
}

/// What the summary says: "Off", or the operations chosen.
pub fn summary(notify: Option<&CollectionNotify>) -> String {
    match notify {
        None => "Notifications: off".into(),
        Some(n) => {
            let ops: Vec<&str> = n.ops.iter().map(|op| op.as_str()).collect();
            format!("Notifications: {}", ops.join(", "))
        }
    }
}

#[component]
pub fn NotifyEditor(widget: i64, loaded: RwSignal<Loaded>) -> AnyView {
    let current = move || match loaded.get() {
        Loaded::Ready(v) => v.widgets.iter().find(|w| w.id == widget).map(|w| (w.title.clone(), w.notify.clone())),
        _ => None,
    };
    let form = RwSignal::new(NotifyForm::of(current().and_then(|(_, n)| n).as_ref()));
    let state = SaveState::default();
    let SaveState { saved, error } = state;
    let title = move || current().map(|(t, _)| t).unwrap_or_default();
    let send = move |notify: Option<CollectionNotify>| {
        save(loaded, widget, "notify", notify, state, |w, notify| w.notify = notify);
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match form.get_untracked().to_notify() {
            Ok(notify) => send(Some(notify)),
            Err(e) => error.set(Some(e)),
        }
    };
    let op_box = move |op: DocumentOp| {
        view! {
            <label class="check">
                <input
                    type="checkbox"
                    prop:checked=move || form.get().ops.contains(&op)
                    on:change=move |ev| form.update(|f| *f = f.toggled(op, event_target_checked(&ev)))
                />
                {op.as_str()}
            </label>
        }
    };
    view! {
        <details class="notify-editor">
            <summary>{move || summary(current().and_then(|(_, n)| n).as_ref())}</summary>
            <form on:submit=submit aria-label=move || format!("Notifications of {}", title())>
                <fieldset class="ops">
                    <legend>"Raise one when a document is"</legend>
                    {DocumentOp::ALL.into_iter().map(op_box).collect_view()}
                </fieldset>
                <label>
                    "Title"
                    <input
                        type="text"
                        maxlength=protocol::collection_notify::MAX_TEMPLATE_LEN
                        placeholder="Order {id} {op}: {customer}"
                        prop:value=move || form.get().title
                        on:input=move |ev| form.update(|f| f.title = event_target_value(&ev))
                    />
                </label>
                <label>
                    "Level"
                    <select on:change=move |ev| {
                        let chosen = event_target_value(&ev);
                        if let Some(level) = Level::ALL.into_iter().find(|l| l.as_str() == chosen) {
                            form.update(|f| f.level = level);
                        }
                    }>
                        {Level::ALL
                            .into_iter()
                            .map(|l| view! { <option value=l.as_str() selected=move || form.get().level == l>{l.as_str()}</option> })
                            .collect_view()}
                    </select>
                </label>
                <p class="form-note">"{field} is a field of the document, {id} its id, {op} created, updated or deleted."</p>
                <button type="submit">"Save notifications"</button>
                <button class="button-quiet" type="button" on:click=move |_| send(None)>"Turn off"</button>
                {move || saved.get().then(|| view! { <span class="form-message">"Saved"</span> })}
                {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
            </form>
        </details>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_starts_from_the_widget_and_sends_only_what_validates() {
        let form = NotifyForm::of(None);
        assert_eq!(form.to_notify().unwrap().ops, [DocumentOp::Created]);
        let form = form.toggled(DocumentOp::Deleted, true).toggled(DocumentOp::Created, false);
        assert_eq!(form.ops, [DocumentOp::Deleted]);
        let none = form.toggled(DocumentOp::Deleted, false);
        assert_eq!(none.to_notify().unwrap_err(), "choose at least one of created, updated or deleted");
        let bad = NotifyForm { title: "Order {id".into(), ..form.clone() };
        assert_eq!(bad.to_notify().unwrap_err(), "the title has a { without its }");
        let saved = CollectionNotify { ops: vec![DocumentOp::Updated], title: "{name}".into(), level: Level::Error };
        assert_eq!(NotifyForm::of(Some(&saved)).to_notify().unwrap(), saved);
        assert_eq!(summary(Some(&saved)), "Notifications: updated");
        assert_eq!(summary(None), "Notifications: off");
    }
}
