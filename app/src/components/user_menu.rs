use crate::live::{Identity, Live};
use leptos::prelude::*;

/// The header's account corner: user, tenant and role (as the page's connection learned them from
/// the server), and Log out.
#[component]
pub fn UserMenu() -> AnyView {
    let identity = Live::expect().identity;
    let account = move || match identity.get() {
        Identity::Known(account) => Some(account),
        Identity::Pending | Identity::Unknown => None,
    };

    let log_out = move |_| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async {
            let _ = crate::http::call("POST", "/api/auth/logout", None).await;
            crate::live::forget_saved_session();
            crate::http::go_to(crate::routes::LOGIN_PATH);
        });
    };

    view! {
        <Show when=move || account().is_some()>
            {move || {
                account()
                    .map(|user| {
                        view! {
                            <span class="user" data-tenant=user.tenant.clone()>
                                <span class="user-email">{user.email}</span>
                                <span class="user-tenant">{format!("{} · {}", user.tenant, user.role)}</span>
                            </span>
                        }
                    })
            }}
            <button class="button-quiet" type="button" on:click=log_out>"Log out"</button>
        </Show>
    }
    .into_any()
}
