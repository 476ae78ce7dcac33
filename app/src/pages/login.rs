use leptos::prelude::*;
use leptos_meta::Title;

/// Where a signed-out visitor is sent, and where the dashboard sends them when the session ends.
pub const LOGIN_PATH: &str = "/login";

#[component]
pub fn LoginPage() -> AnyView {
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        #[cfg(feature = "hydrate")]
        {
            busy.set(true);
            error.set(None);
            let body = serde_json::json!({"email": email.get_untracked(), "password": password.get_untracked()});
            leptos::task::spawn_local(async move {
                match crate::http::call("POST", "/api/auth/login", Some(&body.to_string())).await {
                    Ok((200, _)) => {
                        crate::live::forget_saved_session();
                        crate::http::go_to("/")
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
