// `Shared<Account>` derefs to `AccountFields`, whose cells keep the visibility of the
// fields: a field private to its module stays private in shared memory too.
mod bank {
    use sharedctypes::SharedStruct;

    #[derive(Clone, Copy, SharedStruct)]
    #[repr(C)]
    pub struct Account {
        pub balance: i64,
        pin: u32,
    }
}

fn peek(account: &sharedctypes::Shared<bank::Account>) -> u32 {
    let _ = account.balance.get();
    account.pin.get()
}

fn main() {}
