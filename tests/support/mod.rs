pub mod postgres;
pub mod proxy;
