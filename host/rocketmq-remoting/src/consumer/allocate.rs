//! Queue allocation exactly as the Java client's default strategy
//! (`AllocateMessageQueueAveragely`), so Java consumers and ours in one group agree on who owns
//! which queue: both sort the queues (topic, broker name, queue id) and the client ids (Java
//! `String.compareTo`), then cut the queue list into contiguous, nearly equal ranges.

use std::cmp::Ordering;

/// Java `String.compareTo`: lexicographic over UTF-16 code units (differs from Rust's byte
/// order only for characters above U+FFFF against U+E000..U+FFFF).
pub fn java_compare(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Sorts client ids as Java's `Collections.sort` does and removes duplicates.
pub fn sort_client_ids(ids: &mut Vec<String>) {
    ids.sort_by(|a, b| java_compare(a, b));
    ids.dedup();
}

/// The part of `queues` (already in Java order) that belongs to `me` among `client_ids`
/// (already in Java order). Empty when `me` is not in the list (the broker has not seen our
/// heartbeat yet): better to own nothing for a moment than to overlap with another member.
pub fn allocate_averagely<'q, Q>(queues: &'q [Q], client_ids: &[String], me: &str) -> &'q [Q] {
    let Some(index) = client_ids.iter().position(|id| id == me) else {
        return &[];
    };
    let (queue_count, member_count) = (queues.len(), client_ids.len());
    if queue_count == 0 {
        return &[];
    }
    let remainder = queue_count % member_count;
    let takes_extra = remainder > 0 && index < remainder;
    let size = if queue_count <= member_count {
        1
    } else if takes_extra {
        queue_count / member_count + 1
    } else {
        queue_count / member_count
    };
    let start = if takes_extra { index * size } else { index * size + remainder };
    // With more members than queues, members past the queue count get nothing.
    if start >= queue_count {
        return &[];
    }
    let end = (start + size).min(queue_count);
    &queues[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        let mut ids: Vec<String> = (0..n).map(|i| format!("127.0.0.1@{i}")).collect();
        sort_client_ids(&mut ids);
        ids
    }

    fn owned(queues: usize, members: usize, index: usize) -> Vec<usize> {
        let all: Vec<usize> = (0..queues).collect();
        let ids = ids(members);
        allocate_averagely(&all, &ids, &ids[index]).to_vec()
    }

    // Expected ranges worked out from the Java algorithm (averageSize / startIndex / range).
    #[test]
    fn java_outputs_eight_queues_three_members() {
        assert_eq!(owned(8, 3, 0), vec![0, 1, 2]);
        assert_eq!(owned(8, 3, 1), vec![3, 4, 5]);
        assert_eq!(owned(8, 3, 2), vec![6, 7]);
    }

    #[test]
    fn java_outputs_even_split_and_remainder() {
        assert_eq!(owned(4, 2, 0), vec![0, 1]);
        assert_eq!(owned(4, 2, 1), vec![2, 3]);
        assert_eq!(owned(5, 2, 0), vec![0, 1, 2]);
        assert_eq!(owned(5, 2, 1), vec![3, 4]);
        assert_eq!(owned(4, 1, 0), vec![0, 1, 2, 3]);
        assert_eq!(owned(10, 4, 0), vec![0, 1, 2]);
        assert_eq!(owned(10, 4, 1), vec![3, 4, 5]);
        assert_eq!(owned(10, 4, 2), vec![6, 7]);
        assert_eq!(owned(10, 4, 3), vec![8, 9]);
    }

    #[test]
    fn java_outputs_more_members_than_queues() {
        assert_eq!(owned(3, 5, 0), vec![0]);
        assert_eq!(owned(3, 5, 1), vec![1]);
        assert_eq!(owned(3, 5, 2), vec![2]);
        assert!(owned(3, 5, 3).is_empty());
        assert!(owned(3, 5, 4).is_empty());
        assert_eq!(owned(1, 2, 0), vec![0]);
        assert!(owned(1, 2, 1).is_empty());
    }

    #[test]
    fn every_split_is_a_partition() {
        for queues in 0..20 {
            for members in 1..8 {
                let mut seen = vec![0; queues];
                for index in 0..members {
                    for q in owned(queues, members, index) {
                        seen[q] += 1;
                    }
                }
                assert!(seen.iter().all(|&n| n == 1), "{queues} queues over {members} members: {seen:?}");
            }
        }
    }

    #[test]
    fn unknown_member_owns_nothing() {
        let all = [0, 1, 2];
        assert!(allocate_averagely(&all, &ids(2), "10.0.0.9@x").is_empty());
    }

    #[test]
    fn client_ids_sort_like_java() {
        let mut ids = vec!["b@1".to_string(), "a@2".into(), "a@10".into(), "b@1".into(), "\u{FF61}".into(), "\u{1F600}".into()];
        sort_client_ids(&mut ids);
        // UTF-16: U+1F600 is D83D DE00, which sorts before U+FF61 (Rust's byte order says the opposite).
        assert_eq!(ids, vec!["a@10", "a@2", "b@1", "\u{1F600}", "\u{FF61}"]);
    }
}
