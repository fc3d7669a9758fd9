pub mod postgres;
pub mod proxy;
pub mod smtp;
pub mod vectors;
