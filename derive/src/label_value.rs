//! `#[derive(LabelValue)]`: a fieldless enum whose variants write their names as label values.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Fields};

use crate::attr::{self, Place};
use crate::errors::Errors;

/// The impl of `LabelValue` for `input`.
///
/// # Errors
/// Anything but an enum without fields; a bad attribute; two variants writing the same value.
pub(crate) fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let variants = match &input.data {
        Data::Enum(e) => &e.variants,
        Data::Struct(s) => {
            return Err(syn::Error::new_spanned(
                s.struct_token,
                "`#[derive(LabelValue)]` needs an enum without fields, each variant a value; \
                 implement `LabelValue` by hand for a struct, or derive `LabelSet` for a set of labels",
            ));
        }
        Data::Union(u) => {
            return Err(syn::Error::new_spanned(
                u.union_token,
                "`#[derive(LabelValue)]` needs an enum without fields, not a union",
            ));
        }
    };

    let mut errors = Errors::default();
    let attrs = errors.ok(attr::parse(&input.attrs, Place::Enum)).unwrap_or_default();
    let krate = attrs.krate.unwrap_or_else(|| syn::parse_quote!(::diag_core));

    let mut values: Vec<(String, &syn::Ident)> = Vec::with_capacity(variants.len());
    let mut arms = Vec::with_capacity(variants.len());
    for variant in variants {
        let ident = &variant.ident;
        if !matches!(variant.fields, Fields::Unit) {
            errors.push(syn::Error::new_spanned(
                &variant.fields,
                format_args!(
                    "`#[derive(LabelValue)]` needs an enum without fields, but variant `{ident}` has fields; \
                     implement `LabelValue` by hand to write them"
                ),
            ));
            continue;
        }
        let rename = errors.ok(attr::parse(&variant.attrs, Place::Variant)).and_then(|a| a.rename);
        let (value, span) = match &rename {
            Some(lit) => (lit.value(), lit.span()),
            None => {
                let name = ident.unraw().to_string();
                (attrs.rename_all.map_or_else(|| name.clone(), |case| case.apply(&name)), ident.span())
            }
        };
        if let Some((_, other)) = values.iter().find(|(v, _)| *v == value) {
            errors.push(syn::Error::new(
                span,
                format_args!(
                    "variants `{other}` and `{ident}` both write the label value {value:?}; their series would be one"
                ),
            ));
        }
        // A variant compiled out is matched only where it exists.
        let cfgs = variant.attrs.iter().filter(|a| a.path().is_ident("cfg"));
        arms.push(quote!(#(#cfgs)* Self::#ident => #value,));
        values.push((value, ident));
    }
    errors.finish()?;

    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #krate::labels::LabelValue for #ident #ty_generics #where_clause {
            type Ref<'__diag> = Self;

            #[inline]
            fn write_value<__W: #krate::labels::ValueWriter>(
                &self,
                __w: &mut __W,
            ) -> ::core::result::Result<(), #krate::SeriesError> {
                #krate::labels::ValueWriter::push_str(__w, match *self { #(#arms)* })
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn expanded(input: DeriveInput) -> String {
        expand(&input).unwrap().to_string().split_whitespace().collect()
    }

    fn error(input: DeriveInput) -> Vec<String> {
        expand(&input).unwrap_err().into_iter().map(|e| e.to_string()).collect()
    }

    fn squeeze(s: &str) -> String {
        s.split_whitespace().collect()
    }

    #[test]
    fn variant_names_renamed_one_by_one_or_all() {
        let out = expanded(parse_quote! {
            #[diag(rename_all = "SCREAMING_SNAKE_CASE")]
            enum Outcome {
                Ok,
                TimedOut,
                #[diag(rename = "5xx")]
                ServerError,
                #[cfg(feature = "x")]
                r#Other,
            }
        });
        let want = squeeze(
            r#"impl ::diag_core::labels::LabelValue for Outcome {
                type Ref<'__diag> = Self;
                #[inline]
                fn write_value<__W: ::diag_core::labels::ValueWriter>(&self, __w: &mut __W,)
                    -> ::core::result::Result<(), ::diag_core::SeriesError> {
                    ::diag_core::labels::ValueWriter::push_str(__w, match *self {
                        Self::Ok => "OK",
                        Self::TimedOut => "TIMED_OUT",
                        Self::ServerError => "5xx",
                        #[cfg(feature = "x")] Self::r#Other => "OTHER",
                    })
                }
            }"#,
        );
        assert!(out.contains(&want), "{out}");
    }

    #[test]
    fn names_as_written_by_default_and_another_crate_path() {
        let out = expanded(parse_quote! {
            #[diag(crate = "my_facade")]
            enum Method { Get, Post }
        });
        assert!(out.contains(&squeeze(r#"match *self { Self::Get => "Get", Self::Post => "Post", }"#)), "{out}");
        assert!(out.contains(&squeeze("impl my_facade::labels::LabelValue for Method")), "{out}");
        assert!(out.contains(&squeeze("__W: my_facade::labels::ValueWriter")), "{out}");
        assert!(out.contains("my_facade::labels::ValueWriter::push_str"), "{out}");
        // An enum without variants has no value to write, and matches nothing.
        assert!(
            expanded(parse_quote!(
                enum Never {}
            ))
            .contains("match*self{}")
        );
    }

    #[test]
    fn fields_structs_and_unions_are_refused() {
        assert_eq!(
            error(parse_quote!(
                enum E {
                    A,
                    B(u8),
                    C { x: u8 },
                }
            )),
            [
                "`#[derive(LabelValue)]` needs an enum without fields, but variant `B` has fields; \
                 implement `LabelValue` by hand to write them",
                "`#[derive(LabelValue)]` needs an enum without fields, but variant `C` has fields; \
                 implement `LabelValue` by hand to write them",
            ]
        );
        assert!(
            error(parse_quote!(
                struct S {
                    a: u8,
                }
            ))[0]
                .contains("derive `LabelSet` for a set of labels")
        );
        assert!(error(parse_quote!(union U { a: u8 }))[0].ends_with("not a union"));
    }

    #[test]
    fn two_variants_writing_one_value_are_refused() {
        assert_eq!(
            error(parse_quote! {
                #[diag(rename_all = "lowercase")]
                enum E { Get, GET, #[diag(rename = "get")] Fetch }
            }),
            [
                "variants `Get` and `GET` both write the label value \"get\"; their series would be one",
                "variants `Get` and `Fetch` both write the label value \"get\"; their series would be one",
            ]
        );
    }
}
