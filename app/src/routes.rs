//! The site's paths that more than one part of the app, and the server, need to know: where the
//! sign-in page is, and where a visitor goes once signed in.

/// Where a signed-out visitor is sent, and where the dashboard sends them when the session ends.
pub const LOGIN_PATH: &str = "/login";

/// Where a wall display's page is (`/display/{id}`, its secret in the fragment): it needs no
/// sign-in, and a display session is sent there from any other page.
pub const DISPLAY_PATH: &str = "/display";

/// Where to go once signed in: the page the visitor was sent here from (`?next=`), when it is a path
/// of this site; anything else (another host, `//host`, `/\\host`, a scheme) is ignored, so a link
/// cannot use the sign-in page to send someone elsewhere.
pub fn after_sign_in(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.starts_with(LOGIN_PATH)
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_site_are_followed() {
        assert_eq!(after_sign_in(Some("/d/3")), "/d/3");
        assert_eq!(after_sign_in(Some("/d/3?x=1")), "/d/3?x=1");
        for hostile in
            ["https://evil.test/", "//evil.test", "/\\evil.test", "javascript:alert(1)", "d/3", "/login", "/a\nb", ""]
        {
            assert_eq!(after_sign_in(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(after_sign_in(None), "/");
    }
}
