//! The node's data keys: envelope encryption for everything sealed at rest (subject keys, connector secrets).
//!
//! Data keys are stored wrapped by the master key provider's current key and held unwrapped in memory only.
//! The newest key that is not retired seals new data. [`Vault::rotate`] re-wraps every data key under the
//! provider's current master key and starts a new data key, while the nodes keep serving: a node that meets a
//! value sealed with a key it has not loaded re-reads the keys (and its provider re-reads its key ring).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use crypto::{CryptoError, DataKey, MasterKeyProvider, Sealed, WrappedKey};
use store::{DataKeyRow, Store, StoreError};
use types::{Clock, Secret};

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the key store is unavailable: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(
        "data key {data_key} is wrapped by master key {master_key}, which the master key provider does not have"
    )]
    MissingMasterKey { data_key: String, master_key: String },
}

#[derive(Debug)]
struct KeySet {
    current: Arc<DataKey>,
    /// The deployment's first data key: never replaced, so keys derived from it are stable.
    first: Arc<DataKey>,
    all: HashMap<String, Arc<DataKey>>,
}

/// What [`Vault::rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rotation {
    /// The master key every data key is now wrapped with.
    pub master_key_id: String,
    /// Data keys whose wrapping changed.
    pub rewrapped: usize,
    /// The data key that seals new data from now on.
    pub data_key_id: String,
    /// Data keys that only open old data now.
    pub retired: u64,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Vault {
    store: Arc<dyn Store>,
    provider: Arc<dyn MasterKeyProvider>,
    clock: Arc<dyn Clock>,
    keys: ArcSwap<KeySet>,
    reload: tokio::sync::Mutex<()>,
}

impl Vault {
    /// Loads the data keys, creating the first one on a new deployment. Fails when a data key cannot be
    /// unwrapped: a node that cannot read what it stored does not start.
    pub async fn load(
        store: Arc<dyn Store>,
        provider: Arc<dyn MasterKeyProvider>,
        clock: Arc<dyn Clock>,
    ) -> Result<Vault, VaultError> {
        let mut keys = load(store.as_ref(), provider.as_ref()).await?;
        if keys.is_none() {
            create_data_key(store.as_ref(), provider.as_ref(), clock.as_ref()).await?;
            keys = load(store.as_ref(), provider.as_ref()).await?;
        }
        let keys = keys.ok_or(CryptoError::UnknownKey("(current data key)".to_owned()))?;
        Ok(Vault {
            store,
            provider,
            clock,
            keys: ArcSwap::from_pointee(keys),
            reload: tokio::sync::Mutex::new(()),
        })
    }

    /// The id of the data key that seals new data.
    pub fn current_key_id(&self) -> String {
        self.keys.load().current.id().to_owned()
    }

    /// A key for `label` that every node of the deployment derives alike and that survives rotations (it
    /// comes from the first data key, which rotation retires but never removes).
    pub fn stable_key(&self, label: &[u8]) -> Secret<[u8; crypto::KEY_LEN]> {
        self.keys.load().first.derive(label)
    }

    /// Seals `plaintext` with the current data key, bound to `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
        Ok(self.keys.load().current.seal(plaintext, aad)?)
    }

    /// Opens a value sealed by any data key of this deployment.
    pub async fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Secret<Vec<u8>>, VaultError> {
        let id = Sealed::key_id_of(sealed)?.to_owned();
        if let Some(key) = self.keys.load().all.get(&id) {
            return Ok(key.open(sealed, aad)?);
        }
        // Sealed by a key made after this node loaded its keys (a rotation elsewhere).
        self.refresh().await?;
        let keys = self.keys.load();
        let key = keys.all.get(&id).ok_or(CryptoError::UnknownKey(id))?;
        Ok(key.open(sealed, aad)?)
    }

    /// Re-reads the data keys from the store.
    pub async fn refresh(&self) -> Result<(), VaultError> {
        let _one_at_a_time = self.reload.lock().await;
        if let Some(keys) = load(self.store.as_ref(), self.provider.as_ref()).await? {
            self.keys.store(Arc::new(keys));
        }
        Ok(())
    }

    /// Re-wraps every data key under the provider's current master key, starts a new data key for new data
    /// and retires the others (they keep opening what they sealed).
    pub async fn rotate(&self) -> Result<Rotation, VaultError> {
        self.provider.reload()?;
        let master_key_id = self.provider.current_key_id()?;
        let mut rewrapped = 0;
        for row in self.store.data_keys().await? {
            if row.master_key_id == master_key_id {
                continue;
            }
            let old = WrappedKey { master_key_id: row.master_key_id.clone(), wrapped: row.wrapped.clone() };
            let new = crypto::rewrap_data_key(self.provider.as_ref(), &row.id, &old)
                .map_err(|e| missing_master(e, &row))?;
            if self
                .store
                .rewrap_data_key(&row.id, &row.master_key_id, &new.master_key_id, &new.wrapped)
                .await?
            {
                rewrapped += 1;
            }
        }
        let data_key_id =
            create_data_key(self.store.as_ref(), self.provider.as_ref(), self.clock.as_ref()).await?;
        let retired = self.store.retire_data_keys(&data_key_id, self.clock.now()).await?;
        self.refresh().await?;
        Ok(Rotation { master_key_id, rewrapped, data_key_id, retired })
    }
}

async fn create_data_key(
    store: &dyn Store,
    provider: &dyn MasterKeyProvider,
    clock: &dyn Clock,
) -> Result<String, VaultError> {
    let id = format!("dk-{}", uuid::Uuid::now_v7().simple());
    let (_, wrapped) = crypto::new_data_key(provider, &id)?;
    store
        .insert_data_key(&DataKeyRow {
            id: id.clone(),
            master_key_id: wrapped.master_key_id,
            wrapped: wrapped.wrapped,
            created_at: clock.now(),
            retired_at: None,
        })
        .await?;
    Ok(id)
}

/// Every data key, unwrapped; `None` when there is none yet.
async fn load(store: &dyn Store, provider: &dyn MasterKeyProvider) -> Result<Option<KeySet>, VaultError> {
    let rows = store.data_keys().await?;
    let mut all = HashMap::with_capacity(rows.len());
    let mut current: Option<(&DataKeyRow, Arc<DataKey>)> = None;
    let mut first: Option<Arc<DataKey>> = None;
    for row in &rows {
        let wrapped = WrappedKey { master_key_id: row.master_key_id.clone(), wrapped: row.wrapped.clone() };
        let key = Arc::new(
            crypto::unwrap_data_key(provider, &row.id, &wrapped).map_err(|e| missing_master(e, row))?,
        );
        all.insert(row.id.clone(), key.clone());
        first.get_or_insert_with(|| key.clone());
        // Rows come oldest first: the last active one is current (the newest of all if every one is retired).
        let newer_active =
            row.retired_at.is_none() || current.as_ref().is_some_and(|(c, _)| c.retired_at.is_some());
        if current.is_none() || newer_active {
            current = Some((row, key));
        }
    }
    Ok(current.zip(first).map(|((_, current), first)| KeySet { current, first, all }))
}

fn missing_master(error: CryptoError, row: &DataKeyRow) -> VaultError {
    match error {
        CryptoError::UnknownKey(_) => {
            VaultError::MissingMasterKey { data_key: row.id.clone(), master_key: row.master_key_id.clone() }
        }
        other => VaultError::Crypto(other),
    }
}
