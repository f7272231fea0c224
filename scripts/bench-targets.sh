# shellcheck shell=bash
# bench-targets.sh: sourced by bench.sh after its tables. Prints the performance targets next to what
# this run measured, each marked met or missed, from the same medians the tables show.

# target_line TEXT MEASURED TARGET VERDICT
target_line() { echo "| $1 | $2 | $3 | $4 |"; }

# verdict CONDITION: "met" when the awk expression is true, "MISSED" otherwise
verdict() { awk "BEGIN { exit !($1) }" && echo "met" || echo "**MISSED**"; }

# mbps SECS BYTES
mbps() { awk -v t="$1" -v b="$2" 'BEGIN { printf "%.0f", b / t / 1e6 }'; }

targets_report() {
    local dir s_k s_s s_m ok n r text v loss_top
    echo
    echo "The targets, from the medians above (ratios are throughput ratios: A/B = B's time / A's time):"
    echo "| measure | this run | target | |"
    echo "|---|---|---|---|"
    for dir in down up; do
        read -r s_s ok n < <(median synack "$dir" 0)
        read -r s_m ok n < <(median smoltcp "$dir" 0)
        if [[ $s_s =~ ^[0-9] && $s_m =~ ^[0-9] ]]; then
            r=$(awk -v a="$s_m" -v b="$s_s" 'BEGIN { printf "%.2f", a / b }')
            target_line "bulk ${DIR_TEXT[$dir]}, no offloads: synack/smoltcp" "${r}×" "≥ 1.3×" "$(verdict "$r >= 1.3")"
        else
            target_line "bulk ${DIR_TEXT[$dir]}, no offloads: synack/smoltcp" "synack $s_s, smoltcp $s_m" "≥ 1.3×" "**MISSED**"
        fi
    done
    if ((OFFLOAD)); then
        for dir in down up; do
            read -r s_s ok n < <(median offload "$dir" 0)
            read -r s_k ok n < <(median koff "$dir" 0)
            if [[ $s_s =~ ^[0-9] && $s_k =~ ^[0-9] ]]; then
                local mb rk
                mb=$(mbps "$s_s" "${OFFLOAD_BYTES:-$BYTES}")
                rk=$(awk -v a="$s_k" -v b="$s_s" 'BEGIN { printf "%.2f", a / b }')
                target_line "bulk with --offload, ${DIR_TEXT[$dir]}" "$mb MB/s, ${rk}× kernel (offloads on)" \
                    "≥ 2500 MB/s, ≥ 0.5×" "$(verdict "$mb >= 2500 && $rk >= 0.5")"
            else
                target_line "bulk with --offload, ${DIR_TEXT[$dir]}" "synack $s_s, kernel $s_k" "≥ 2500 MB/s, ≥ 0.5×" "**MISSED**"
            fi
        done
    fi
    # The loss target is stated at 5%; the highest loss rate of this run stands in for it.
    loss_top=$(tr ',' '\n' <<<"$LOSSES" | sort -n | tail -n 1)
    if ((loss_top > 0)); then
        for dir in down up; do
            read -r s_s ok n < <(median synack "$dir" "$loss_top")
            read -r s_k ok n < <(median kernel "$dir" "$loss_top")
            read -r s_m ok n < <(median smoltcp "$dir" "$loss_top")
            text="bulk ${DIR_TEXT[$dir]} at $loss_top% loss both ways ($LOSS_MB MB): time vs the kernel's; speed vs smoltcp"
            if [[ $s_s =~ ^[0-9] && $s_k =~ ^[0-9] ]]; then
                local tk vs_m cond
                tk=$(awk -v a="$s_s" -v b="$s_k" 'BEGIN { printf "%.2f", a / b }')
                if [[ $s_m =~ ^[0-9] ]]; then
                    vs_m=$(awk -v a="$s_m" -v b="$s_s" 'BEGIN { printf "%.1f", a / b }')
                    cond="$tk <= 3 && $vs_m >= 10"
                    vs_m="${vs_m}× smoltcp"
                else
                    # smoltcp did not finish: it took longer than the timeout, a lower bound.
                    vs_m=$(awk -v a="$TIMEOUT" -v b="$s_s" 'BEGIN { printf "%.1f", a / b }')
                    cond="$tk <= 3 && $vs_m >= 10"
                    vs_m="> ${vs_m}× smoltcp (smoltcp: $s_m after ${TIMEOUT} s)"
                fi
                target_line "$text" "${tk}× the kernel's time, $vs_m" "≤ 3×, ≥ 10×" "$(verdict "$cond")"
            else
                target_line "$text" "synack $s_s, kernel $s_k" "≤ 3×, ≥ 10×" "**MISSED**"
            fi
        done
    fi
    if ((CONNS > 0)); then
        local mode rs rm
        mode=http
        ((CONN_PARALLEL > 1)) && mode=http-p$CONN_PARALLEL
        read -r rs ok n < <(conn_median synack "$mode")
        read -r rm ok n < <(conn_median smoltcp "$mode")
        text="connections/s, server closes first, one client thread ($mode)"
        if [[ $rs =~ ^[0-9] && $rm =~ ^[0-9] ]]; then
            target_line "$text" "$rs/s; smoltcp $rm/s" "≥ 25000/s, ≥ smoltcp" "$(verdict "$rs >= 25000 && $rs >= $rm")"
        else
            target_line "$text" "synack $rs, smoltcp $rm" "≥ 25000/s, ≥ smoltcp" "**MISSED**"
        fi
    fi
    if ((PCAP)); then
        # The target is synack's own cost: the capture in a tmpfs. To disk, the disk's write
        # rate bounds it (shown beside).
        local kind where
        for kind in pcapm pcap; do
            where="tmpfs"
            [[ $kind == pcap ]] && where="disk, ${DISK_MBPS:-?} MB/s"
            for dir in down up; do
                read -r s_s ok n < <(median synack "$dir" 0)
                read -r s_k ok n < <(median "$kind" "$dir" 0)
                if [[ $s_s =~ ^[0-9] && $s_k =~ ^[0-9] ]]; then
                    local cost
                    cost=$(awk -v a="$s_s" -v b="$s_k" 'BEGIN { printf "%.0f", (1 - a / b) * 100 }')
                    target_line "--pcap cost ($where), ${DIR_TEXT[$dir]}" "$cost%" "≤ 10%" "$(verdict "$cost <= 10")"
                elif [[ $s_k != none ]]; then
                    target_line "--pcap cost ($where), ${DIR_TEXT[$dir]}" "synack $s_s, with --pcap $s_k" "≤ 10%" "**MISSED**"
                fi
            done
        done
    fi
    if [[ -n ${MEM_PER_CONN:-} ]]; then
        v=$(awk -v b="$MEM_PER_CONN" 'BEGIN { printf "%.1f", b / 1024 }')
        target_line "resident memory per idle established connection" "$v KiB" "≤ 64 KiB" "$(verdict "$MEM_PER_CONN <= 65536")"
    fi
}
