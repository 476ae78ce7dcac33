//! The Web Locks API, which web-sys offers only behind `web_sys_unstable_apis` (a flag that would
//! change every crate's build): the two calls used, a lock held until released, and the names of
//! the locks held in any tab.

use super::*;

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks` (Web Locks API). web-sys offers it only behind `web_sys_unstable_apis`,
    /// which would change the build flags of every crate; these two calls are all that is used.
    pub(super) type LockManager;

    #[wasm_bindgen(method)]
    pub(super) fn request(this: &LockManager, name: &str, callback: &JsValue) -> js_sys::Promise;

    #[wasm_bindgen(method)]
    pub(super) fn query(this: &LockManager) -> js_sys::Promise;
}

pub(super) fn lock_manager() -> Option<LockManager> {
    let navigator = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("navigator")).ok()?;
    let locks = js_sys::Reflect::get(&navigator, &JsValue::from_str("locks")).ok()?;
    (locks.is_object()).then(|| locks.unchecked_into())
}

/// Names of the locks held or asked for now, in any tab of this origin (a tab that just opened may
/// not have been granted its own yet).
pub(super) async fn held_locks(locks: &LockManager) -> Option<BTreeSet<String>> {
    let snapshot = wasm_bindgen_futures::JsFuture::from(locks.query()).await.ok()?;
    let mut names = BTreeSet::new();
    for list in ["held", "pending"] {
        let infos = js_sys::Reflect::get(&snapshot, &JsValue::from_str(list)).ok()?;
        names.extend(
            js_sys::Array::from(&infos)
                .iter()
                .filter_map(|info| js_sys::Reflect::get(&info, &JsValue::from_str("name")).ok()?.as_string()),
        );
    }
    Some(names)
}

/// A Web Lock asked for, held from when it is granted until released (or the page goes).
pub(super) struct HeldLock {
    release: Rc<RefCell<Option<js_sys::Function>>>,
    released: Rc<Cell<bool>>,
}

impl HeldLock {
    /// Asks for `name`; `granted` runs once it is this tab's and says whether to keep it.
    pub(super) fn request(locks: &LockManager, name: &str, granted: impl FnOnce() -> bool + 'static) -> Self {
        let release: Rc<RefCell<Option<js_sys::Function>>> = Rc::default();
        let released = Rc::new(Cell::new(false));
        let callback = Closure::once_into_js({
            let release = release.clone();
            let released = released.clone();
            move |_lock: JsValue| -> JsValue {
                if released.get() || !granted() {
                    return JsValue::UNDEFINED; // lets go at once
                }
                // The lock is held until this promise settles.
                js_sys::Promise::new(&mut |resolve, _reject| {
                    release.borrow_mut().replace(resolve);
                })
                .into()
            }
        });
        // Rejected only when the page goes, which releases everything anyway.
        let _ = locks.request(name, &callback);
        Self { release, released }
    }

    pub(super) fn release(&self) {
        self.released.set(true);
        if let Some(resolve) = self.release.borrow_mut().take() {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    }
}
