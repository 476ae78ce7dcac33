//! A table of a `collection` topic's documents: rows appear, change (and flash) and disappear live.

use super::{
    flash::flashing,
    frame::{Framed, WidgetFrame},
};
use crate::live::{
    documents::{Documents, cell_text},
    kpi_values::label,
    use_topic,
};
use leptos::prelude::*;
use protocol::dashboard::{WidgetDef, WidgetMode};

#[component]
pub fn DocumentTable(def: WidgetDef, mode: WidgetMode) -> AnyView {
    let feed = use_topic::<Documents>(&def.dom_id(), &def.topic, mode);
    let flash = flashing(move || feed.data.with(|d| d.changed.clone()));
    let columns = Memo::new(move |_| feed.data.with(Documents::columns));
    let rows = move || {
        feed.data.with(|docs| {
            let columns = columns.get();
            docs.iter()
                .map(|(id, doc)| {
                    let lit = flash.with(|f| f.contains(id));
                    let cells = columns
                        .iter()
                        .map(|c| view! { <td>{doc.get(c).map(|v| cell_text(c, v)).unwrap_or_default()}</td> })
                        .collect_view();
                    view! {
                        <tr class:row-flash=lit data-doc-id=id.clone()>
                            <th scope="row">{id.clone()}</th>
                            {cells}
                        </tr>
                    }
                })
                .collect_view()
        })
    };
    let caption = def.title.clone();
    view! {
        <WidgetFrame framed=Framed::new(&def, feed)>
            <div class="table-scroll">
                <table class="documents">
                    <caption class="visually-hidden">{caption}</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Id"</th>
                            {move || columns.get().into_iter().map(|c| view! { <th scope="col">{label(&c)}</th> }).collect_view()}
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
            <p class="table-count">{move || format!("{} rows", feed.data.with(Documents::len))}</p>
        </WidgetFrame>
    }
    .into_any()
}
