"""The unbiased pass@k estimator (Chen et al. 2021, "Evaluating Large Language Models Trained on Code")."""


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c of them correct) is correct.

    1 - C(n-c, k) / C(n, k), computed as a product so that large n neither overflows nor loses precision.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (got n={n}, c={c}, k={k})")
    if n - c < k:  # every draw of k samples includes a correct one
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def mean_pass_at_k(counts: list[tuple[int, int]], k: int) -> float:
    """pass@k averaged over problems, each given as (n samples, c correct)."""
    if not counts:
        raise ValueError("pass@k of no problems is undefined")
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)
