use leptos::prelude::*;
use serde::Deserialize;

/// Who is signed in, as `/api/auth/me` says (read in the browser only).
#[cfg(feature = "hydrate")]
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Me {
    user: MeUser,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MeUser {
    pub email: String,
    pub tenant: String,
    pub role: String,
}

/// The header's account corner: user, tenant and role, and Log out.
#[component]
pub fn UserMenu() -> AnyView {
    let me = RwSignal::new(None::<MeUser>);

    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            if let Ok((200, body)) = crate::http::call("GET", "/api/auth/me", None).await
                && let Ok(parsed) = serde_json::from_str::<Me>(&body)
            {
                me.set(Some(parsed.user));
            }
        });
    });

    let log_out = move |_| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async {
            let _ = crate::http::call("POST", "/api/auth/logout", None).await;
            crate::live::forget_saved_session();
            crate::http::go_to(crate::pages::LOGIN_PATH);
        });
    };

    view! {
        <Show when=move || me.get().is_some()>
            {move || {
                me.get()
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
