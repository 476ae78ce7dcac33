//! The secrets users, publishers and displays present, and how each is stored: password hashes
//! (Argon2id), API keys and display links (a SHA-256 of the secret, compared in constant time).
//! Pure: the store keeps what these make, and `auth` checks what a request brings against it;
//! neither needs the other for this.

pub mod api_key;
pub mod display_secret;
pub mod password;
