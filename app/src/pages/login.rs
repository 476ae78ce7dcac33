use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn LoginPage() -> AnyView {
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let next = leptos_router::hooks::use_query_map().with_untracked(|q| q.get("next"));
    #[cfg(not(feature = "hydrate"))]
    let _ = &next; // only the browser navigates

    // The server sends a signed-in visitor on, but it cannot see the session cookie on a visit from
    // another site's link (SameSite=Strict); this page can, with a request of its own.
    #[cfg(feature = "hydrate")]
    {
        let next = next.clone();
        leptos::task::spawn_local(async move {
            if let Ok((200, body)) = crate::http::call("GET", "/api/auth/session", None).await
                && serde_json::from_str::<serde_json::Value>(&body).is_ok_and(|v| !v["session"].is_null())
            {
                crate::http::go_to(crate::routes::after_sign_in(next.as_deref()));
            }
        });
    }

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        #[cfg(feature = "hydrate")]
        {
            busy.set(true);
            error.set(None);
            let body = serde_json::json!({"email": email.get_untracked(), "password": password.get_untracked()});
            let next = next.clone();
            leptos::task::spawn_local(async move {
                match crate::http::call("POST", "/api/auth/login", Some(&body.to_string())).await {
                    Ok((200, _)) => {
                        crate::live::forget_saved_session();
                        crate::http::go_to(crate::routes::after_sign_in(next.as_deref()))
                    }
                    Ok((401, _)) => error.set(Some("Wrong e-mail or password.".into())),
                    Ok((_, text)) => error.set(Some(format!("Could not sign in: {text}"))),
                    Err(e) => error.set(Some(e)),
                }
                busy.set(false);
            });
        }
    };

    view! {
        <Title text="Sign in — livedash"/>
        <main class="login">
            <form class="login-card" on:submit=submit>
                <h1><span class="brand">"livedash"</span></h1>
                <p class="login-hint">"Sign in to watch your dashboards live."</p>
                <label for="email">"E-mail"</label>
                <input id="email" name="email" type="email" autocomplete="username" required
                    prop:value=email on:input=move |ev| email.set(event_target_value(&ev))/>
                <label for="password">"Password"</label>
                <input id="password" name="password" type="password" autocomplete="current-password" required
                    prop:value=password on:input=move |ev| password.set(event_target_value(&ev))/>
                <p class="login-error" role="alert">{move || error.get()}</p>
                <button type="submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Signing in…" } else { "Sign in" }}
                </button>
            </form>
        </main>
    }
    .into_any()
}
