//! Our RFC 9162 tree against an independent implementation (ct-merkle, a dev-dependency used
//! only here): every root, every inclusion proof for every index, and every consistency proof
//! for every (m, n), for all tree sizes up to 200; plus random large sizes. Our verifiers accept
//! all of them and reject altered ones.

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use proptest::prelude::*;
use silta_proto::tlog::{
    Hash, MemoryTree, consistency_proof, inclusion_proof, leaf_hash, verify_consistency,
    verify_inclusion,
};

fn chunks(bytes: &[u8]) -> Vec<Hash> {
    bytes.chunks(32).map(|c| c.try_into().unwrap()).collect()
}

#[test]
fn every_proof_matches_the_oracle_up_to_200_leaves() {
    let mut ours = MemoryTree::default();
    let mut oracle: MemoryBackedTree<sha2_011::Sha256, Vec<u8>> = MemoryBackedTree::new();
    let mut roots = vec![ours.root(0)];
    for n in 1..=200u64 {
        let data = format!("event {n}").into_bytes();
        ours.push(leaf_hash(&data));
        oracle.push(data);
        let root = ours.root(n);
        assert_eq!(
            root.as_slice(),
            oracle.root().as_bytes().as_slice(),
            "root at {n}"
        );
        roots.push(root);
        for i in 0..n {
            let proof = inclusion_proof(&ours, i, n).unwrap();
            assert_eq!(
                proof,
                chunks(oracle.prove_inclusion(i as usize).as_bytes()),
                "inclusion {i}/{n}"
            );
            verify_inclusion(i, n, &ours.leaf(i).unwrap(), &proof, &root).unwrap();
        }
        for m in 1..n {
            let proof = consistency_proof(&ours, m, n).unwrap();
            assert_eq!(
                proof,
                chunks(oracle.prove_consistency((n - m) as usize).as_bytes()),
                "consistency {m}->{n}"
            );
            verify_consistency(m, n, &proof, &roots[m as usize], &root).unwrap();
        }
    }
}

fn random_tree(n: u64) -> MemoryTree {
    let mut t = MemoryTree::default();
    for i in 0..n {
        t.push(leaf_hash(&i.to_be_bytes()));
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Large random sizes: proofs verify, and any altered hash, index or size is refused.
    #[test]
    fn large_trees(n in 1000u64..5000, i in any::<prop::sample::Index>(), m in any::<prop::sample::Index>(), which in any::<prop::sample::Index>()) {
        let t = random_tree(n);
        let root = t.root(n);
        let i = i.index(n as usize) as u64;
        let proof = inclusion_proof(&t, i, n).unwrap();
        prop_assert!(verify_inclusion(i, n, &t.leaf(i).unwrap(), &proof, &root).is_ok());
        let mut bad = proof.clone();
        let w = which.index(bad.len().max(1));
        if !bad.is_empty() {
            bad[w][0] ^= 1;
            prop_assert!(verify_inclusion(i, n, &t.leaf(i).unwrap(), &bad, &root).is_err());
        }
        // (A wrong tree size is not always caught by the path alone, e.g. the leftmost leaf of
        // 1025 and 1026 leaves has the same path shape: the signed checkpoint binds size to root.)
        if n > 1 {
            let other = (i + 1) % n;
            prop_assert!(verify_inclusion(other, n, &t.leaf(i).unwrap(), &proof, &root).is_err());
        }

        let m = 1 + m.index((n - 1) as usize) as u64;
        let old_root = t.root(m);
        let cproof = consistency_proof(&t, m, n).unwrap();
        prop_assert!(verify_consistency(m, n, &cproof, &old_root, &root).is_ok());
        if m < n {
            let mut bad = cproof.clone();
            let w = which.index(bad.len());
            bad[w][31] ^= 0x80;
            prop_assert!(verify_consistency(m, n, &bad, &old_root, &root).is_err());
            let mut forked = old_root;
            forked[0] ^= 1;
            prop_assert!(verify_consistency(m, n, &cproof, &forked, &root).is_err());
        }
    }
}
