# bash completion for kubectl-gatehouse. Load it with
#   source <(kubectl-gatehouse completion bash)
# `kubectl gatehouse ...` is completed by kubectl itself (1.26+), which asks the
# kubectl_complete-gatehouse helper installed next to the plugin.
_kubectl_gatehouse() {
    # Split the line on blanks only: bash's own words break at '=' and ':'.
    local line=${COMP_LINE:0:COMP_POINT} cur=""
    local -a words
    read -ra words <<<"$line"
    if [[ $line != *[[:space:]] ]]; then
        cur=${words[${#words[@]}-1]}
        unset 'words[${#words[@]}-1]'
    fi
    local out
    out=$("${words[0]}" __complete "${words[@]:1}" "$cur" 2>/dev/null) || return 0
    local directive=0 entry
    local -a values=()
    while IFS='' read -r entry; do
        if [[ $entry =~ ^:[0-9]+$ ]]; then
            directive=${entry#:}
        elif [[ -n $entry ]]; then
            values+=("${entry%%$'\t'*}")
        fi
    done <<<"$out"
    COMPREPLY=()
    local v
    for v in "${values[@]}"; do
        [[ $v == "$cur"* ]] && COMPREPLY+=("$v")
    done
    # bash replaces only the text after the last '=' or ':' of the word.
    local head=${cur%"${cur##*[=:]}"}
    if [[ -n $head ]]; then
        COMPREPLY=("${COMPREPLY[@]#"$head"}")
    fi
    if (( ${#COMPREPLY[@]} == 0 && (directive & 4) == 0 )); then
        compopt -o default 2>/dev/null
    fi
    if (( directive & 2 )); then
        compopt -o nospace 2>/dev/null
    fi
    return 0
}
complete -F _kubectl_gatehouse kubectl-gatehouse
