// giropops-senhas: the page's only script, loaded from this origin (the CSP forbids inline scripts and
// handlers). Everything here is an enhancement: without JavaScript the form still generates passwords.
(function () {
  "use strict";

  var faixa = document.getElementById("tamanho");
  var valor = document.getElementById("tamanho-valor");
  if (faixa && valor) {
    faixa.addEventListener("input", function () {
      valor.textContent = faixa.value;
    });
  }

  var campo = document.getElementById("senha");
  var mostrar = document.getElementById("mostrar");
  var copiar = document.getElementById("copiar");
  var estado = document.getElementById("estado");
  if (!campo || !mostrar || !copiar) {
    return;
  }

  function avisar(texto) {
    if (estado) {
      estado.textContent = texto;
    }
  }

  mostrar.hidden = false;
  copiar.hidden = false;

  mostrar.addEventListener("click", function () {
    var visivel = campo.type === "text";
    campo.type = visivel ? "password" : "text";
    mostrar.setAttribute("aria-pressed", visivel ? "false" : "true");
    mostrar.querySelector("span").textContent = visivel ? "Mostrar" : "Ocultar";
  });

  function copiarPorSelecao() {
    var tipo = campo.type;
    campo.type = "text";
    campo.select();
    var ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    campo.type = tipo;
    campo.setSelectionRange(0, 0);
    avisar(ok ? "Senha copiada." : "Não foi possível copiar: selecione e copie manualmente.");
  }

  copiar.addEventListener("click", function () {
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(campo.value).then(function () {
        avisar("Senha copiada.");
      }, copiarPorSelecao);
    } else {
      copiarPorSelecao();
    }
  });
})();
