//! Enums whose variants each carry a label (a metric label, an error code):
//! declared with [`labelled!`], so the variants, their labels, the list of
//! all of them and their count are one table and cannot drift apart.

/// Declares a fieldless enum with a label per variant, plus `ALL` (every
/// variant, in declaration order), `label()` and `index()` (the
/// position in `ALL`).
macro_rules! labelled {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $label:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The variant's label.
            pub fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }

            /// The variant's position in [`Self::ALL`].
            pub fn index(self) -> usize {
                self as usize
            }
        }
    };
}

pub(crate) use labelled;
