//! `#[backend_test]` (or `#[backend_test(flavor = "multi_thread", worker_threads = 4)]`) on an
//! `async fn name()` keeps the function and adds a module `name` with two `#[tokio::test]`s,
//! `name::sqlite` and `name::postgres`, each running it with `crate::support::on_backend`, which
//! sets the backend the test's `TestApp` opens (and skips PostgreSQL without `TEST_DATABASE_URL`).
//!
//! Plain token handling, no parser crate: the attribute's arguments go to `tokio::test` as they
//! are, and the test's name is the identifier after `fn`.

use proc_macro::{TokenStream, TokenTree};

#[proc_macro_attribute]
pub fn backend_test(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut tokens = item.clone().into_iter();
    let name = loop {
        match tokens.next() {
            Some(TokenTree::Ident(i)) if i.to_string() == "fn" => match tokens.next() {
                Some(TokenTree::Ident(name)) => break name.to_string(),
                _ => return error("#[backend_test] expects a named function"),
            },
            Some(_) => {}
            None => return error("#[backend_test] expects an async fn"),
        }
    };
    let tokio_args = if args.is_empty() { String::new() } else { format!("({args})") };
    let generated = format!(
        "#[cfg(test)] mod {name} {{
            #[tokio::test{tokio_args}]
            async fn sqlite() {{
                crate::support::on_backend(provisio_server::store::Backend::Sqlite, super::{name}).await
            }}
            #[tokio::test{tokio_args}]
            async fn postgres() {{
                crate::support::on_backend(provisio_server::store::Backend::Postgres, super::{name}).await
            }}
        }}"
    );
    match generated.parse::<TokenStream>() {
        Ok(module) => item.into_iter().chain(module).collect(),
        Err(e) => error(&format!("#[backend_test] generated invalid code: {e}")),
    }
}

fn error(message: &str) -> TokenStream {
    format!("compile_error!({message:?});").parse().unwrap_or_default()
}
