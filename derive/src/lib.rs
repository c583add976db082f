#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod attr;
mod case;
mod errors;
mod label_set;
mod label_value;

/// Makes a struct with named fields a label set: a family keyed by it takes its label names
/// from the field names, in field order.
///
/// Lifetime parameters are allowed (a family is keyed by the struct with `'static` and takes
/// lookups with any lifetime, so a `&'a str` may come from a `String` made at run time); type
/// and const parameters are not. Every field's type implements `LabelValue`. The field
/// attribute `#[diag(rename = "name")]` gives a label another name; a label name the registry
/// would refuse (not `[a-zA-Z_][a-zA-Z0-9_]*`, `le`, starting with `__`), or one given to two
/// fields, is a compile error. `#[diag(crate = "path")]` on the struct names the crate that
/// exports `labels` and `SeriesError` (default `::diag_core`).
///
/// # Examples
/// ```
/// use diag_core::{Counter, Family, LabelSet, SeriesError};
///
/// #[derive(LabelSet)]
/// struct Request<'a> {
///     #[diag(rename = "code")]
///     status: u16,
///     user: &'a str,
/// }
///
/// static REQUESTS: Family<Counter, Request<'static>, 64> = Family::typed(());
///
/// # fn main() -> Result<(), SeriesError> {
/// let user = String::from("ada"); // known only at run time
/// REQUESTS.get_or_create(Request { status: 200, user: &user })?.inc();
/// assert_eq!(REQUESTS.label_names(), ["code", "user"]);
/// # Ok(())
/// # }
/// ```
///
/// A family keyed by `Request` takes nothing else: not another struct with the same field
/// types,
/// ```compile_fail,E0308
/// # use diag_core::{Counter, Family, LabelSet};
/// # #[derive(LabelSet)]
/// # struct Request<'a> { status: u16, user: &'a str }
/// #[derive(LabelSet)]
/// struct OtherRequest<'a> { status: u16, user: &'a str }
///
/// static REQUESTS: Family<Counter, Request<'static>, 64> = Family::typed(());
/// let _ = REQUESTS.get_or_create(OtherRequest { status: 200, user: "ada" });
/// ```
/// not a tuple of the same values,
/// ```compile_fail,E0308
/// # use diag_core::{Counter, Family, LabelSet};
/// # #[derive(LabelSet)]
/// # struct Request<'a> { status: u16, user: &'a str }
/// static REQUESTS: Family<Counter, Request<'static>, 64> = Family::typed(());
/// let _ = REQUESTS.get_or_create((200u16, "ada"));
/// ```
/// and two labels of different types cannot be swapped:
/// ```compile_fail,E0308
/// # use diag_core::{Counter, Family, LabelSet};
/// # #[derive(LabelSet)]
/// # struct Request<'a> { status: u16, user: &'a str }
/// static REQUESTS: Family<Counter, Request<'static>, 64> = Family::typed(());
/// let _ = REQUESTS.get_or_create(Request { status: "ada", user: 200 });
/// ```
/// A type parameter is refused, spanning it:
/// ```compile_fail
/// # use diag_core::LabelSet;
/// #[derive(LabelSet)]
/// struct Request<T> {
///     status: T,
/// }
/// ```
/// and so is a tuple struct (a tuple with `Family::new` is the positional form):
/// ```compile_fail
/// # use diag_core::LabelSet;
/// #[derive(LabelSet)]
/// struct Request(u16, &'static str);
/// ```
#[proc_macro_derive(LabelSet, attributes(diag))]
pub fn derive_label_set(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    label_set::expand(&input).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Makes a fieldless enum a label value: each variant writes its name.
///
/// `#[diag(rename = "value")]` on a variant writes another value;
/// `#[diag(rename_all = "…")]` on the enum converts every other variant's name: `"lowercase"`,
/// `"UPPERCASE"`, `"snake_case"`, `"kebab-case"` or `"SCREAMING_SNAKE_CASE"` (words start at
/// upper-case letters, as serde converts them). Two variants writing the same value, or a
/// variant with fields, are compile errors. `#[diag(crate = "path")]` on the enum names the
/// crate that exports `labels` and `SeriesError` (default `::diag_core`).
///
/// # Examples
/// ```
/// use diag_core::{Counter, Family, LabelValue, SeriesError};
///
/// #[derive(Clone, Copy, LabelValue)]
/// #[diag(rename_all = "snake_case")]
/// enum Outcome {
///     Served,
///     TimedOut,
///     #[diag(rename = "5xx")]
///     ServerError,
/// }
///
/// static OUTCOMES: Family<Counter, (Outcome,), 8> = Family::new(["outcome"], ());
///
/// # fn main() -> Result<(), SeriesError> {
/// OUTCOMES.get_or_create((Outcome::TimedOut,))?.inc();
/// OUTCOMES.get_or_create((Outcome::ServerError,))?.inc();
/// let mut seen = Vec::new();
/// OUTCOMES.for_each(|labels, _| seen.push(labels.text().to_owned()));
/// seen.sort();
/// assert_eq!(seen, [r#"outcome="5xx""#, r#"outcome="timed_out""#]);
/// # Ok(())
/// # }
/// ```
///
/// An enum with fields is refused, spanning them:
/// ```compile_fail
/// # use diag_core::LabelValue;
/// #[derive(LabelValue)]
/// enum Outcome {
///     Served,
///     Failed(u16),
/// }
/// ```
#[proc_macro_derive(LabelValue, attributes(diag))]
pub fn derive_label_value(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    label_value::expand(&input).unwrap_or_else(syn::Error::into_compile_error).into()
}
