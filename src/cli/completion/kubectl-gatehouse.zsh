#compdef kubectl-gatehouse
# zsh completion for kubectl-gatehouse. Load it with
#   source <(kubectl-gatehouse completion zsh)
# `kubectl gatehouse ...` is completed by kubectl itself (1.26+), which asks the
# kubectl_complete-gatehouse helper installed next to the plugin.
_kubectl_gatehouse() {
  local out directive=0 entry value help
  local -a entries described
  out=$(${words[1]} __complete "${(@)words[2,CURRENT-1]}" "${words[CURRENT]}" 2>/dev/null) || return 1
  entries=("${(@f)out}")
  if [[ ${entries[-1]} =~ '^:[0-9]+$' ]]; then
    directive=${entries[-1]#:}
    entries[-1]=()
  fi
  for entry in $entries; do
    [[ -z $entry ]] && continue
    value=${entry%%$'\t'*}
    help=""
    [[ $entry == *$'\t'* ]] && help=${entry#*$'\t'}
    # _describe splits VALUE:HELP at the first unescaped colon.
    described+=("${value//:/\\:}${help:+:$help}")
  done
  if (( ${#described} )); then
    _describe -t values 'kubectl-gatehouse' described
  elif (( (directive & 4) == 0 )); then
    _files
  fi
}
compdef _kubectl_gatehouse kubectl-gatehouse
